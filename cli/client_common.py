"""What every gRPC client command shares: connection flags, errors, output.

Connection: ``--addr`` (``CONVEYOR_ADDR``, default 127.0.0.1:50051) and ``--token``
(``CONVEYOR_TOKEN``). Errors print the gRPC status and message (and each bad field) on
stderr and exit 2 for bad input, 1 otherwise; with ``--json`` an ``{"error": …}`` object
also goes to stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

import grpc
from google.protobuf import json_format
from google.protobuf.message import Message
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from cli.view import COLOURS, RESET
from rpc.client import Client, connect

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
_USAGE_CODES = frozenset({grpc.StatusCode.INVALID_ARGUMENT})
DEFAULT_ADDR = "127.0.0.1:50051"


class UsageError(Exception):
    """Bad command-line input found after parsing (exit 2)."""


def parser(prog: str, description: str) -> argparse.ArgumentParser:
    """A parser with the shared flags: --addr, --token, --json."""
    p = argparse.ArgumentParser(prog=prog, description=description)
    add_common(p)
    return p


def add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--addr", default=None, help=f"server address (CONVEYOR_ADDR, {DEFAULT_ADDR})")
    p.add_argument("--token", default=None, help="API token (CONVEYOR_TOKEN)")
    p.add_argument("--json", action="store_true", help="print JSON on stdout")


def client_for(args: argparse.Namespace) -> Client:
    addr = args.addr or os.environ.get("CONVEYOR_ADDR") or DEFAULT_ADDR
    token = args.token or os.environ.get("CONVEYOR_TOKEN") or None
    return connect(addr, token)


def run(prog: str, args: argparse.Namespace, body: Callable[[Client], int]) -> int:
    """Run ``body`` with a client; turn gRPC and usage errors into messages + exit codes."""
    try:
        with client_for(args) as client:
            return body(client)
    except UsageError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except grpc.RpcError as exc:
        return report_rpc_error(prog, exc, as_json=bool(getattr(args, "json", False)))
    except KeyboardInterrupt:
        return EXIT_FAILED


def report_rpc_error(prog: str, error: grpc.RpcError, *, as_json: bool) -> int:
    code: grpc.StatusCode = error.code()
    details: str = error.details() or ""
    violations = field_violations(error)
    print(f"{prog}: {code.name}: {details}", file=sys.stderr)
    for field, description in violations:
        print(f"  {field}: {description}", file=sys.stderr)
    if as_json:
        print(json.dumps({"error": {
            "code": code.name, "message": details,
            "violations": [{"field": f, "description": d} for f, d in violations],
        }}))
    return EXIT_USAGE if code in _USAGE_CODES else EXIT_FAILED


def field_violations(error: grpc.RpcError) -> list[tuple[str, str]]:
    try:
        status = rpc_status.from_call(error)
    except ValueError:
        return []
    found: list[tuple[str, str]] = []
    for detail in status.details if status is not None else ():
        bad = error_details_pb2.BadRequest()
        if detail.Unpack(bad):
            found.extend((v.field, v.description) for v in bad.field_violations)
    return found


def to_json(message: Message) -> dict[str, Any]:
    """A message as JSON-ready dict (proto field names, enums by name, defaults shown)."""
    result: dict[str, Any] = json_format.MessageToDict(
        message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )
    return result


def print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, sort_keys=True))


def colour_on() -> bool:
    return sys.stdout.isatty() and not os.environ.get("NO_COLOR")


def paint(text: str, status: str) -> str:
    """``text`` in the colour of ``status`` on a terminal; plain otherwise."""
    if colour_on() and status in COLOURS:
        return f"{COLOURS[status]}{text}{RESET}"
    return text


def table(headers: Sequence[str], rows: Sequence[Sequence[str]],
          status_column: int | None = None) -> list[str]:
    """Aligned columns; the status column is coloured on a terminal."""
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    for row in rows:
        cells = []
        for index, (cell, width) in enumerate(zip(row, widths, strict=True)):
            padded = cell.ljust(width)
            cells.append(paint(padded, cell) if index == status_column else padded)
        lines.append("  ".join(cells).rstrip())
    return lines


def parse_inputs(pairs: Sequence[str]) -> dict[str, str]:
    inputs: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise UsageError(f"--input {pair!r}: expected NAME=VALUE")
        inputs[name] = value
    return inputs


def parse_duration(text: str) -> int:
    """``90s``, ``30m``, ``12h``, ``30d`` (or plain seconds) → seconds; ``0`` = never."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    text = text.strip().lower()
    try:
        if text and text[-1] in units:
            return int(text[:-1]) * units[text[-1]]
        return int(text)
    except ValueError:
        raise UsageError(f"{text!r} is not a duration: use e.g. 3600, 90m, 12h or 30d") from None
