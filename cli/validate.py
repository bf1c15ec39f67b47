"""`conveyor validate FILE [--json]`: check a workflow file without running it.

Exit status 0 when valid, 2 when invalid or unreadable. Errors are reported as
``file:line:col: path: message``, one a line, then ``N errors in FILE``; with ``--json``
the result is ``{"valid": true, "jobs": [...]}`` or ``{"valid": false, "error": {...}}``
(``cli.errors``).
"""

from __future__ import annotations

import json
import sys
from typing import Any

from cli.errors import CliError, Parser, report, workflow_failure
from workflow import WorkflowInvalid, load
from workflow.yamlsafe import MAX_FILE_BYTES

EXIT_OK = 0
PROG = "conveyor validate"


def main(argv: list[str]) -> int:
    """Run the command; ``argv`` excludes the program and sub-command names."""
    parser = Parser(prog=PROG, description="Check a workflow file and list its jobs.")
    parser.add_argument("file", help="the workflow YAML file ('-' for standard input)")
    parser.add_argument("--json", action="store_true",
                        help='print the result as JSON on stdout (errors too: '
                             '{"valid": false, "error": {...}})')
    args = parser.parse_args(argv)
    filename: str = args.file
    shown = "<stdin>" if filename == "-" else filename
    try:
        plan = load(_read(filename, shown))
    except CliError as exc:
        return report(PROG, exc, as_json=args.json, extra={"valid": False})
    except WorkflowInvalid as exc:
        return report(PROG, workflow_failure(exc.errors, shown), as_json=args.json,
                      extra={"valid": False})
    jobs: list[dict[str, Any]] = [
        {"key": job.key, "name": job.name, "needs": list(job.needs), "matrix": dict(job.matrix)}
        for job in plan.jobs
    ]
    if args.json:
        print(json.dumps({"valid": True, "jobs": jobs}, indent=2))
    else:
        title = f" ({plan.name})" if plan.name else ""
        print(f"{shown}: valid{title}, {len(jobs)} job{'s' if len(jobs) != 1 else ''}")
        for job in plan.jobs:
            after = f"  after {', '.join(job.needs)}" if job.needs else ""
            print(f"  {job.key}{after}")
    return EXIT_OK


def _read(filename: str, shown: str) -> bytes:
    # Read one byte past the limit: enough to know the file is too large, no more.
    try:
        if filename == "-":
            text = sys.stdin.buffer.read(MAX_FILE_BYTES + 1)
        else:
            with open(filename, "rb") as handle:
                text = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise CliError(f"cannot read {shown}: {exc.strerror or exc}") from None
    if len(text) > MAX_FILE_BYTES:
        raise CliError(f"{shown}: the file is larger than {MAX_FILE_BYTES:,} bytes (1 MiB), "
                       "the limit")
    return text


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
