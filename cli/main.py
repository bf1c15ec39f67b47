"""The `conveyor` command: one program, several roles and tools (DESIGN.md §2)."""

from __future__ import annotations

import sys

USAGE = """conveyor <command> [options]

commands:
  run FILE        run a workflow locally, end to end, and show it live
  validate FILE   check a workflow file; exit 0 valid, 2 invalid
  serve           run a server (--role all|pipeline|executor)
  console         the operator console: live actors, builds, queue
  db migrate      apply database migrations

Run `conveyor <command> --help` for a command's options.
"""


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("-h", "--help", "help"):
        print(USAGE)
        return 0 if args else 2
    command, rest = args[0], args[1:]
    if command == "run":
        from cli.run import main as run

        return run(rest)
    if command == "validate":
        from cli.validate import main as validate

        return validate(rest)
    if command == "serve":
        from cli.serve import main as serve

        return serve(rest)
    if command == "console":
        from cli.console import main as console

        return console(rest)
    if command == "db":
        from cli.serve import db_main

        return db_main(rest)
    print(f"conveyor: unknown command {command!r}\n\n{USAGE}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
