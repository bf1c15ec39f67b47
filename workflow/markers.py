"""The marker protocol between a job's runner script and the engine.

A job's output stream (the pod log, or a local process's stdout) carries the steps'
own output as ordinary lines, and the runner script's reports as markers, each ended by
a newline::

    ::conveyor:<nonce>::step-start::<index>::<name>
    ::conveyor:<nonce>::step-end::<index>::<outcome>::<conclusion>::<exit code|->::<reason>
    ::conveyor:<nonce>::output::<name>::<value>
    ::conveyor:<nonce>::job-end::<exit code>

Step output goes to the stream unfiltered (throughput), so when a step's output does not
end with a newline the next marker continues that line: ``partial::conveyor:<nonce>::``
... The parser therefore takes the LAST occurrence of ``::conveyor:<nonce>::`` in a line
as the start of a marker and the text before it as an ordinary line.

``<name>``, ``<reason>`` and ``<value>`` are encoded so that no user text can break a
marker: standard base64, or ``%`` followed by hex when the image has no ``base64`` tool.
A step that does not run gets a ``step-end`` with outcome ``skipped`` and no
``step-start``. The nonce is random per job and never given to the steps, so a step that
prints a marker-looking text with another nonce (or none) produces ordinary output.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
from dataclasses import dataclass

OUTCOMES = frozenset({"success", "failure", "cancelled", "skipped"})
PREFIX = "::conveyor:"
_NONCE = re.compile(r"[A-Za-z0-9]{8,128}\Z")
_INT = re.compile(r"-?[0-9]{1,10}\Z")


class MarkerError(ValueError):
    """A line carries this job's nonce but is not a well-formed marker: the runner
    script and the parser disagree (a bug), never something a step can cause."""


@dataclass(frozen=True)
class StepStarted:
    index: int
    name: str = ""  # the display name, templates evaluated


@dataclass(frozen=True)
class StepFinished:
    index: int
    outcome: str  # success | failure | cancelled | skipped (before continue-on-error)
    conclusion: str  # the same after continue-on-error
    exit_code: int | None  # None when no process ran (skipped)
    reason: str  # "" on success, else "exit code 2", "timed out after 5m", ...


@dataclass(frozen=True)
class JobOutput:
    name: str
    value: str


@dataclass(frozen=True)
class JobFinished:
    exit_code: int


Event = StepStarted | StepFinished | JobOutput | JobFinished


def new_nonce() -> str:
    """A fresh random nonce for one job attempt."""
    return secrets.token_hex(16)


def check_nonce(nonce: str) -> str:
    """``nonce`` if it is usable in markers (8-128 letters/digits), else ValueError."""
    if not _NONCE.match(nonce):
        raise ValueError(f"marker nonce must be 8-128 ASCII letters or digits, got {nonce!r}")
    return nonce


def encode_field(text: str) -> str:
    """The marker encoding of a free-text field (base64 of its UTF-8)."""
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


def decode_field(field: str) -> str:
    """Inverse of the script's encodings: base64, or ``%`` + hex. Undecodable UTF-8
    bytes (a step may write anything) are replaced rather than rejected."""
    try:
        if field.startswith("%"):
            raw = bytes.fromhex(field[1:])
        else:
            raw = base64.b64decode(field.encode("ascii"), validate=True)
    except (ValueError, binascii.Error) as exc:
        raise MarkerError(f"bad encoded marker field {field[:80]!r}: {exc}") from None
    return raw.decode("utf-8", errors="replace")


def format_marker(nonce: str, event: Event) -> str:
    """The marker (without newline) for ``event``; the script emits the same."""
    head = f"{PREFIX}{nonce}::"
    if isinstance(event, StepStarted):
        return f"{head}step-start::{event.index}::{encode_field(event.name)}"
    if isinstance(event, StepFinished):
        code = "-" if event.exit_code is None else str(event.exit_code)
        return (
            f"{head}step-end::{event.index}::{event.outcome}::{event.conclusion}::{code}"
            f"::{encode_field(event.reason)}"
        )
    if isinstance(event, JobOutput):
        return f"{head}output::{encode_field(event.name)}::{encode_field(event.value)}"
    return f"{head}job-end::{event.exit_code}"


class MarkerParser:
    """Turns the lines of one job's output stream into output text and events.

    ``feed`` returns ``(text, event)``: ``(line, None)`` for an ordinary output line
    (the caller logs it as is), ``(None, event)`` for a line that is a marker of this
    job, and ``(text, event)`` when a marker follows output that had no final newline
    (``text`` is that output, unchanged). A marker of this job that is not well formed
    raises :class:`MarkerError`.
    """

    def __init__(self, nonce: str) -> None:
        self._head = f"{PREFIX}{check_nonce(nonce)}::"

    def feed(self, line: str) -> tuple[str | None, Event | None]:
        """Splits one line (a trailing ``\\n`` or ``\\r\\n`` after a marker is ignored)."""
        # Runs for every line of output: one substring search on the common path.
        at = line.rfind(self._head)
        if at < 0:
            return line, None
        body = line[at + len(self._head) :].rstrip("\n").removesuffix("\r")
        kind, _, rest = body.partition("::")
        fields = rest.split("::") if rest else []
        try:
            event = self._event(kind, fields)
        except MarkerError as exc:
            raise MarkerError(f"{exc} in marker line {line[at : at + 200]!r}") from None
        return (line[:at] if at else None), event

    def _event(self, kind: str, fields: list[str]) -> Event:
        if kind == "step-start" and len(fields) == 2:
            return StepStarted(_int(fields[0]), decode_field(fields[1]))
        if kind == "step-end" and len(fields) == 5:
            index, outcome, conclusion, code, reason = fields
            for value in (outcome, conclusion):
                if value not in OUTCOMES:
                    raise MarkerError(f"unknown step outcome {value!r}")
            exit_code = None if code == "-" else _int(code)
            return StepFinished(_int(index), outcome, conclusion, exit_code, decode_field(reason))
        if kind == "output" and len(fields) == 2:
            return JobOutput(decode_field(fields[0]), decode_field(fields[1]))
        if kind == "job-end" and len(fields) == 1:
            return JobFinished(_int(fields[0]))
        raise MarkerError(f"unknown marker {kind!r} with {len(fields)} fields")


def _int(text: str) -> int:
    if not _INT.match(text):
        raise MarkerError(f"expected an integer, got {text[:40]!r}")
    return int(text)
