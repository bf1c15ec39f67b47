"""How every `conveyor` command reports an expected failure: one format, never a traceback.

The API, kept small so any command (`cli/run.py` too) can adopt it:

- ``CliError(message, code=..., details=...)``: an expected failure. ``code`` is a gRPC
  status name (``INVALID_ARGUMENT``, ``NOT_FOUND``, ``UNAVAILABLE``...) for local
  failures too, so scripts see one vocabulary; ``INVALID_ARGUMENT`` exits 2, every other
  code 1.
- ``Detail``: one located problem, shown as ``file:line:col: path: message`` (the parts
  that are unknown are left out).
- ``workflow_failure(errors, file)``: a ``CliError`` for a workflow's errors, summed up
  as ``3 errors in ci.yml``.
- ``report(prog, error, as_json=...)``: print it and return the exit code. On stderr:
  ``prog: message`` — or one line per detail, then ``prog: <summary>``. With ``as_json``
  also ``{"error": {"code", "message", "details": [...]}}`` on stdout, on one line.
- ``Parser``: argparse whose usage errors follow the same format (JSON too under --json).
- ``quiet_broken_pipe()``: what to do when stdout's reader went away (``| head``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

from workflow.errors import WorkflowError

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as a shell reports Ctrl-C
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, what `git log | head -1` exits with

USAGE_CODE = "INVALID_ARGUMENT"


@dataclass(frozen=True)
class Detail:
    """One problem: a workflow error (``file``, ``line``, ``column`` known) or a bad field."""

    path: str
    message: str
    file: str = ""
    line: int = 0
    column: int = 0

    @property
    def located(self) -> bool:
        return bool(self.file or self.line)

    def format(self) -> str:
        where = self.file
        if self.line:
            where = f"{self.file or '<workflow>'}:{self.line}:{self.column}"
        return ": ".join(part for part in (where, self.path, self.message) if part)

    def to_json(self) -> dict[str, Any]:
        return {"file": self.file, "line": self.line, "column": self.column,
                "path": self.path, "message": self.message}


class CliError(Exception):
    """An expected failure of a command; ``report`` shows it."""

    def __init__(self, message: str, *, code: str = USAGE_CODE,
                 details: Iterable[Detail] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.details: tuple[Detail, ...] = tuple(details)

    @property
    def exit_code(self) -> int:
        return EXIT_USAGE if self.code == USAGE_CODE else EXIT_FAILED

    def lines(self, prog: str) -> list[str]:
        """What a person reads on stderr."""
        if len(self.details) == 1 and not self.details[0].located:
            # One bad field: the status message only repeats it.
            return [f"{prog}: {self.details[0].format()}"]
        return [*(d.format() for d in self.details), f"{prog}: {self.message}"]

    def to_json(self) -> dict[str, Any]:
        message = self.message
        if len(self.details) == 1 and not self.details[0].located:
            message = self.details[0].format()
        return {"code": self.code, "message": message,
                "details": [d.to_json() for d in self.details]}


def count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def workflow_failure(errors: Sequence[WorkflowError], file: str) -> CliError:
    """Every error of a workflow file, summed up as ``N errors in FILE``."""
    return CliError(
        f"{count(len(errors), 'error')} in {file}",
        details=[Detail(e.path, e.message, file, e.line, e.column) for e in errors],
    )


def report(prog: str, error: CliError, *, as_json: bool,
           extra: Mapping[str, Any] | None = None) -> int:
    """Print ``error`` (stderr; and stdout as JSON when ``as_json``); return its exit code.

    ``extra`` adds keys beside ``"error"`` in the JSON object (``validate``'s ``valid``).
    """
    for line in error.lines(prog):
        print(line, file=sys.stderr)
    if as_json:
        # One line, so it also ends a stream of JSON lines (`logs --json`) readably.
        print(json.dumps({**(extra or {}), "error": error.to_json()}))
    return error.exit_code


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are reported like every other error: on
    stderr after the usage line, and as JSON on stdout when the command line has --json
    and this (sub)command takes it. Exit 2."""

    _argv_has_json = False

    def parse_args(self, args: Sequence[str] | None = None,  # type: ignore[override]
                   namespace: argparse.Namespace | None = None) -> argparse.Namespace:
        argv = list(sys.argv[1:] if args is None else args)
        options = argv[: argv.index("--")] if "--" in argv else argv
        Parser._argv_has_json = "--json" in options
        parsed, extras = self.parse_known_args(argv, namespace)
        if extras:
            # argparse leaves them to the top parser; the sub-command they were given to
            # says so (`conveyor token list: unrecognized…`), with its usage and --json.
            _chosen(self, parsed).error(f"unrecognized arguments: {' '.join(extras)}")
        return parsed

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        takes_json = any("--json" in action.option_strings for action in self._actions)
        report(self.prog, CliError(message), as_json=takes_json and Parser._argv_has_json)
        sys.exit(EXIT_USAGE)


def _chosen(parser: argparse.ArgumentParser,
            parsed: argparse.Namespace) -> argparse.ArgumentParser:
    """The innermost sub-command parser the command line chose (``parser`` if none)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            sub = action.choices.get(getattr(parsed, action.dest or "", None) or "")
            if sub is not None:
                return _chosen(sub, parsed)
    return parser


def quiet_broken_pipe() -> int:
    """stdout's reader is gone (``conveyor builds | head -1``): say nothing more, and
    keep Python's exit-time flush from failing again; returns the exit code to use."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    for stream in (sys.stdout, sys.stderr):
        # A stream that is not a real file (tests capture it) flushes to no pipe.
        with contextlib.suppress(OSError, ValueError, AttributeError):
            os.dup2(devnull, stream.fileno())
    os.close(devnull)
    return EXIT_BROKEN_PIPE
