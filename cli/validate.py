"""`conveyor validate FILE [--json]`: check a workflow file without running it.

Exit status 0 when valid, 2 when invalid or unreadable.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from workflow import WorkflowError, WorkflowInvalid, load
from workflow.yamlsafe import MAX_FILE_BYTES

EXIT_OK = 0
EXIT_INVALID = 2


def main(argv: list[str]) -> int:
    """Run the command; ``argv`` excludes the program and sub-command names."""
    parser = argparse.ArgumentParser(
        prog="conveyor validate", description="Check a workflow file and list its jobs."
    )
    parser.add_argument("file", help="the workflow YAML file ('-' for standard input)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args(argv)
    filename: str = args.file
    try:
        text = _read(filename)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        error = WorkflowError(0, 0, "", f"cannot read {filename}: {reason}")
        return _invalid([error], filename, args.json)
    if len(text) > MAX_FILE_BYTES:
        error = WorkflowError(
            0, 0, "", f"the file is larger than {MAX_FILE_BYTES:,} bytes (1 MiB), the limit"
        )
        return _invalid([error], filename, args.json)
    try:
        plan = load(text)
    except WorkflowInvalid as exc:
        return _invalid(list(exc.errors), filename, args.json)
    jobs: list[dict[str, Any]] = [
        {"key": job.key, "name": job.name, "needs": list(job.needs), "matrix": dict(job.matrix)}
        for job in plan.jobs
    ]
    if args.json:
        print(json.dumps({"valid": True, "jobs": jobs}, indent=2))
    else:
        title = f" ({plan.name})" if plan.name else ""
        print(f"{filename}: valid{title}, {len(jobs)} job{'s' if len(jobs) != 1 else ''}")
        for job in plan.jobs:
            after = f"  after {', '.join(job.needs)}" if job.needs else ""
            print(f"  {job.key}{after}")
    return EXIT_OK


def _read(filename: str) -> bytes:
    # Read one byte past the limit: enough to know the file is too large, no more.
    if filename == "-":
        return sys.stdin.buffer.read(MAX_FILE_BYTES + 1)
    with open(filename, "rb") as handle:
        return handle.read(MAX_FILE_BYTES + 1)


def _invalid(errors: list[WorkflowError], filename: str, as_json: bool) -> int:
    if as_json:
        payload = {
            "valid": False,
            "errors": [
                {"path": e.path, "line": e.line, "column": e.column, "message": e.message}
                for e in errors
            ],
        }
        print(json.dumps(payload, indent=2))
    else:
        for error in errors:
            where = f"{error.path}: " if error.path else ""
            print(
                f"{filename}:{error.line}:{error.column}: {where}{error.message}", file=sys.stderr
            )
        count = len(errors)
        print(f"{filename}: invalid ({count} error{'s' if count != 1 else ''})", file=sys.stderr)
    return EXIT_INVALID


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
