"""What every gRPC client command shares: connection flags, errors, output.

Connection: ``--addr`` (``CONVEYOR_ADDR``, default 127.0.0.1:50051) and ``--token``
(``CONVEYOR_TOKEN``). Errors are reported by ``cli.errors``: one line on stderr (one per
bad field or workflow error, then a summary), and with ``--json`` an ``{"error": …}``
object on stdout; exit 2 for bad input, 1 otherwise. A server that cannot be reached
gets a hint (is `conveyor serve` running, is CONVEYOR_ADDR right).
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

# Re-exported: the commands import what they need from here.
from cli.errors import EXIT_FAILED as EXIT_FAILED
from cli.errors import EXIT_INTERRUPTED as EXIT_INTERRUPTED
from cli.errors import EXIT_OK as EXIT_OK
from cli.errors import EXIT_USAGE as EXIT_USAGE
from cli.errors import CliError as CliError
from cli.errors import Detail, count, report
from cli.errors import Parser as Parser
from cli.view import COLOURS, RESET
from conveyor.v1 import common_pb2
from rpc.client import Client, connect
from runtime_config import LISTEN

DEFAULT_ADDR = LISTEN  # where a server listens by default
JSON_HELP = "print JSON on stdout (errors too, as {\"error\": {...}})"


class UsageError(CliError):
    """Bad command-line input found after parsing (exit 2)."""


def parser(prog: str, description: str) -> argparse.ArgumentParser:
    """A parser with the shared flags: --addr, --token, --json."""
    p = Parser(prog=prog, description=description)
    add_common(p)
    return p


def add_connection(p: argparse.ArgumentParser) -> None:
    p.add_argument("--addr", default=None,
                   help=f"server address (default: CONVEYOR_ADDR, else {DEFAULT_ADDR})")
    p.add_argument("--token", default=None, help="API token (default: CONVEYOR_TOKEN)")


def add_common(p: argparse.ArgumentParser) -> None:
    add_connection(p)
    p.add_argument("--json", action="store_true", help=JSON_HELP)


def address(args: argparse.Namespace) -> str:
    return str(args.addr or os.environ.get("CONVEYOR_ADDR") or DEFAULT_ADDR)


def client_for(args: argparse.Namespace) -> Client:
    token = args.token or os.environ.get("CONVEYOR_TOKEN") or None
    return connect(address(args), token)


def run(prog: str, args: argparse.Namespace, body: Callable[[Client], int], *,
        file: str = "", where: str = "") -> int:
    """Run ``body`` with a client; report a ``CliError`` or a failed call and return the
    exit code. ``file`` names the local workflow file a call sent (its errors are shown
    as ``file:line:col: …``); ``where`` names what several bad fields belong to in the
    summary (default: ``file``, else "the request")."""
    as_json = bool(getattr(args, "json", False))
    try:
        with client_for(args) as client:
            return body(client)
    except CliError as exc:
        return report(prog, exc, as_json=as_json)
    except grpc.RpcError as exc:
        error = rpc_failure(exc, address(args), file=file, where=where)
        return report(prog, error, as_json=as_json)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


def rpc_failure(error: grpc.RpcError, addr: str, *, file: str = "",
                where: str = "") -> CliError:
    """A failed call as a ``CliError``: the server's message, its workflow errors and bad
    fields as details, and a hint when no server answered at all."""
    code: grpc.StatusCode = error.code()
    message: str = error.details() or code.name.lower().replace("_", " ")
    try:
        status = rpc_status.from_call(error)
    except ValueError:
        status = None
    if status is None and code == grpc.StatusCode.UNAVAILABLE:
        # No rich status: the transport failed, not the server (which always sends one).
        reason = message.rsplit(": ", 1)[-1].strip(" ]")
        return CliError(
            f"cannot reach a Conveyor server at {addr} ({reason}): is `conveyor serve` "
            "running there, and is CONVEYOR_ADDR (or --addr) right?", code=code.name)
    located: list[Detail] = []
    fields: list[Detail] = []
    for packed in status.details if status is not None else ():
        found = common_pb2.WorkflowError()
        bad = error_details_pb2.BadRequest()
        if packed.Unpack(found):
            located.append(Detail(found.path, found.message, file or "<workflow>",
                                  found.line, found.column))
        elif packed.Unpack(bad):
            fields.extend(Detail(v.field, v.description) for v in bad.field_violations)
    # A workflow error travels both ways (BadRequest for generic clients): show it once.
    details = located or fields
    if len(details) > 1 or located:
        message = f"{count(len(details), 'error')} in {where or file or 'the request'}"
    return CliError(message, code=code.name, details=details)


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
