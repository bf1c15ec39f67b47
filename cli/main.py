"""The `conveyor` command: one program, several roles and tools."""

from __future__ import annotations

# Before anything else: a Ctrl-C before main() can catch it (the imports below, ~0.1 s
# with the commands') or after main() returned (the interpreter's teardown) ends the
# program the way SIGINT does by default: silently, exit status 130 in the shell, never
# a KeyboardInterrupt traceback. main() turns Ctrl-C into an exception only while it
# runs, where it is caught. `_signal` is loaded with the interpreter; `signal` would be
# one more import during which Ctrl-C still raises.
import _signal  # type: ignore[import-not-found]

_signal.signal(_signal.SIGINT, _signal.SIG_DFL)

import importlib  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402

EXIT_USAGE = 2  # as cli.errors has them; that module is imported on use (it is not light)
EXIT_INTERRUPTED = 130

USAGE = """usage: conveyor <command> [options]

commands:
  run FILE        run a workflow locally, end to end, and show it live (--json)
  validate FILE   check a workflow file; exit 0 valid, 2 invalid (--json)
  serve           run a server (--role all|pipeline|executor; no --json)
  console         the operator console: live actors, builds, queue (no --json)
  db migrate      apply database migrations (no --json)
  admin bootstrap create the first instance admin and print its token (--json)
  ping            is a server answering? (--wait SECONDS; no token, no --json)

client commands (CONVEYOR_ADDR, CONVEYOR_TOKEN; each takes --addr, --token, --json):
  pipeline create|update|list|show|archive
  trigger PIPELINE [--ref] [--sha] [--input k=v]... [--follow]
  builds          list builds (--pipeline, --status, --user)
  status BUILD    a build and its jobs
  logs BUILD      its log lines (--job, --follow)
  cancel BUILD    stop a build
  retry BUILD     re-run its failed jobs and their dependents
  member add|remove|list
  token create|list|revoke
  user create     (instance admins)
  whoami

Exit codes: 0 success, 1 failure (refused, not found, build failed, no server),
2 bad input (usage, invalid workflow), 130 interrupted, 141 output closed early (`| head`).
With --json, errors are JSON on stdout too: {"error": {"code", "message", "details"}}.
Run `conveyor <command> --help` for a command's options.
"""


# command -> (module, function); imported on use so `conveyor run` stays quick to start.
_CLIENT_COMMANDS = {
    "pipeline": ("cli.pipeline_cmd", "pipeline_main"),
    "member": ("cli.pipeline_cmd", "member_main"),
    "trigger": ("cli.build_cmd", "trigger_main"),
    "builds": ("cli.build_cmd", "builds_main"),
    "status": ("cli.build_cmd", "status_main"),
    "logs": ("cli.build_cmd", "logs_main"),
    "cancel": ("cli.build_cmd", "cancel_main"),
    "retry": ("cli.build_cmd", "retry_main"),
    "token": ("cli.identity_cmd", "token_main"),
    "user": ("cli.identity_cmd", "user_main"),
    "whoami": ("cli.identity_cmd", "whoami_main"),
    "admin": ("cli.identity_cmd", "admin_main"),
}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    try:
        try:
            # Inside the try: a Ctrl-C from the moment it raises is caught below.
            signal.signal(signal.SIGINT, signal.default_int_handler)
            return _main(args)
        finally:
            signal.signal(signal.SIGINT, signal.SIG_DFL)
    except KeyboardInterrupt:  # one that came as the handler was being switched back
        return EXIT_INTERRUPTED


def _main(args: list[str]) -> int:
    try:
        try:
            code = _dispatch(args)
        except SystemExit as exc:  # argparse: --help, usage errors
            if exc.code is not None and not isinstance(exc.code, int):
                raise
            code = exc.code or 0
        sys.stdout.flush()  # a reader gone (`| head`) shows here, not at exit
        return code
    except BrokenPipeError:
        from cli.errors import quiet_broken_pipe

        return quiet_broken_pipe()
    except KeyboardInterrupt:
        # Commands that own something to clean up catch Ctrl-C themselves; this is the
        # net for the rest (e.g. during their imports): no traceback.
        print(file=sys.stderr)
        return EXIT_INTERRUPTED


def _dispatch(args: list[str]) -> int:
    if not args:
        # Like a missing required argument: usage on stderr, exit 2. Asked for, help goes
        # to stdout with exit 0.
        print(USAGE, file=sys.stderr, end="")
        return EXIT_USAGE
    if args[0] in ("-h", "--help", "help"):
        print(USAGE, end="")
        return 0
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
    if command == "ping":
        from cli.ping import main as ping

        return ping(rest)
    if command == "db":
        from cli.serve import db_main

        return db_main(rest)
    client_command = _CLIENT_COMMANDS.get(command)
    if client_command is not None:
        module, function = client_command
        return int(getattr(importlib.import_module(module), function)(rest))
    print(f"conveyor: unknown command {command!r}\n\n{USAGE}", file=sys.stderr, end="")
    return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
