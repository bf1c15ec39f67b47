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

A line longer than :data:`MAX_LINE` characters is cut into pieces of that length: every
piece but the last ends with :data:`CONTINUED` (a carriage return, which ordinary lines
never end with: those are stripped), so the log keeps the whole text, in lines a store
and a stream can bound. A marker may be longer (a job output): up to :data:`MAX_MARKER`.

``<name>``, ``<reason>`` and ``<value>`` are encoded so that no user text can break a
marker: standard base64, or ``%`` followed by hex when the image has no ``base64`` tool.
A step that does not run gets a ``step-end`` with outcome ``skipped`` and no
``step-start``. The nonce is random per job and never given to the steps, so a step that
prints a marker-looking text with another nonce (or none) produces ordinary output.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import re
import secrets
from dataclasses import dataclass

OUTCOMES = frozenset({"success", "failure", "cancelled", "skipped"})
PREFIX = "::conveyor:"
# Docker and containerd cut at 16 KiB; 64 Ki characters keeps source lines, minified
# bundles and base64 blobs whole in nearly every log while a piece stays far below any
# message limit (at most 256 KiB as UTF-8).
MAX_LINE = 64 * 1024
# A job output travels in one marker, encoded (base64: 4/3 of its size, hex: twice):
# GitHub allows 1 MB per output.
MAX_MARKER = 4 * 1024 * 1024
CONTINUED = "\r"
"""Ends a stored line whose text goes on in the next line (no newline was printed)."""
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
        self.head = f"{PREFIX}{check_nonce(nonce)}::"

    def feed(self, line: str) -> tuple[str | None, Event | None]:
        """Splits one line (a trailing ``\\n`` or ``\\r\\n`` after a marker is ignored)."""
        # Runs for every line of output: one substring search on the common path.
        at = line.rfind(self.head)
        if at < 0:
            return line, None
        body = line[at + len(self.head) :].rstrip("\n").removesuffix("\r")
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


Segment = list[str] | Event | MarkerError
"""What :meth:`OutputReader.feed` returns, in stream order: consecutive log lines (a
continued piece ends with :data:`CONTINUED`), a marker's event, or a marker of this job
that was not well formed (its text is kept among the lines; the caller reports it)."""


class _Segments:
    def __init__(self) -> None:
        self.out: list[Segment] = []
        self.lines: list[str] = []

    def mark(self, item: Event | MarkerError) -> None:
        if self.lines:
            self.out.append(self.lines)
            self.lines = []
        self.out.append(item)

    def done(self) -> list[Segment]:
        if self.lines:
            self.out.append(self.lines)
        return self.out


class OutputReader:
    """Cuts one job's output, read in pieces of any size, into log lines and events.

    The cost is linear in the bytes read whatever the line lengths: a line still
    without its newline is kept as a list of parts and cut once it is long enough, never
    copied again and again. Where a line is cut depends only on the text, not on how
    it was read, so reading a log twice (a Kubernetes follower that reconnects) yields
    the same lines. A cut never splits this job's marker: a marker of the script starts
    a line or follows a step's output that had no final newline, and text before it is
    ended there (as :class:`MarkerParser` does).
    """

    def __init__(self, nonce: str, *, max_line: int = MAX_LINE,
                 max_marker: int = MAX_MARKER) -> None:
        self._parser = MarkerParser(nonce)
        self._head = self._parser.head
        if max_line < len(self._head) or max_marker < max_line:
            raise ValueError(f"need {len(self._head)} <= max_line <= max_marker, got "
                             f"{max_line} and {max_marker}")
        self.max_line = max_line
        self.max_marker = max_marker
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._parts: list[str] = []  # the current line, not yet ended or cut
        self._size = 0  # characters in _parts
        self._in_marker = False  # _parts starts with the head: wait for its newline
        self._raw = False  # a too-long marker: the rest of its line is plain text

    def feed(self, data: bytes) -> list[Segment]:
        return self._text(self._decoder.decode(data), final=False)

    def close(self) -> list[Segment]:
        """The end of the stream: output after the last newline is a line too."""
        return self._text(self._decoder.decode(b"", final=True), final=True)

    def _text(self, text: str, *, final: bool) -> list[Segment]:
        sink = _Segments()
        if "\x00" in text:  # no store keeps NUL (PostgreSQL text cannot)
            text = text.replace("\x00", "\ufffd")
        lines = text.split("\n")
        rest = lines.pop()
        if lines:
            if self._parts:
                self._parts.append(lines[0])
                self._line("".join(self._parts), sink)
                self._parts, self._size = [], 0
                del lines[0]
            if not lines:
                pass
            elif (self._head not in text and "\r" not in text
                  and max(map(len, lines)) <= self.max_line):
                sink.lines.extend(lines)  # the common case: no per-line work at all
            else:
                for line in lines:
                    self._line(line, sink)
        if rest:
            self._parts.append(rest)
            self._size += len(rest)
            self._cut_pending(sink)
        if final and self._parts:
            self._line("".join(self._parts), sink)
            self._parts, self._size = [], 0
        return sink.done()

    def _cut_pending(self, sink: _Segments) -> None:
        """Emits what is decided of the unfinished line, keeps the rest."""
        if self._in_marker:
            if self._size <= self.max_marker:
                return
            self._in_marker = False
            self._raw = True
            sink.mark(MarkerError(f"a marker longer than {self.max_marker} characters; "
                                  "kept as output"))
        window = self.max_line if self._raw else self.max_line + len(self._head)
        if self._size <= window:
            return
        pending = "".join(self._parts)
        rest = self._cut(pending, sink, complete=False)
        self._parts = [rest] if rest else []
        self._size = len(rest)

    def _line(self, line: str, sink: _Segments) -> None:
        """One whole line (its newline seen, or the end of the stream)."""
        if len(line) > self.max_line:
            line = self._cut(line, sink, complete=True)
        line = line.rstrip("\r")  # after the cuts, which must not depend on how it was read
        raw, self._raw, self._in_marker = self._raw, False, False
        if raw or self._head not in line:
            sink.lines.append(line)
            return
        try:
            text, event = self._parser.feed(line)
        except MarkerError as exc:
            sink.lines.append(line)
            sink.mark(exc)
            return
        if text is not None:
            sink.lines.append(text.rstrip("\r"))
        if event is not None:
            sink.mark(event)

    def _cut(self, text: str, sink: _Segments, *, complete: bool) -> str:
        """Emits the decided pieces of ``text`` (a line from its start or its last cut)
        and returns the rest: the last piece when ``complete``, else what is undecided.

        A piece ends at ``max_line`` unless a head starts there or before: a head is
        only known once ``len(head)`` characters more are read, hence the reach.
        """
        head, size, pos, end = self._head, self.max_line, 0, len(text)
        reach = size + len(head)
        while True:
            left = end - pos
            if self._raw:
                if left <= size:
                    return text[pos:]
                sink.lines.append(text[pos : pos + size] + CONTINUED)
                pos += size
                continue
            if (left <= size) if complete else (left <= reach):
                return text[pos:]
            at = text.find(head, pos, pos + reach)
            if at < 0:
                sink.lines.append(text[pos : pos + size] + CONTINUED)
                pos += size
            elif at > pos:  # output without a final newline, ended by a marker
                sink.lines.append(text[pos:at].rstrip("\r"))
                pos = at
            elif left <= self.max_marker:
                if not complete:
                    self._in_marker = True
                return text[pos:]
            else:
                self._raw = True
                sink.mark(MarkerError(f"a marker longer than {self.max_marker} characters; "
                                      "kept as output"))
