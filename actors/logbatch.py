"""The log batching policy (pure): number lines per job, flush on size or age, cap a job.

Kept apart from the LogActor so the policy can be tested without threads. Everything
is bounded by bytes as well as by lines, since one line may be short or 64 Ki
characters: the lines in flight (`LineGate`), a flush, a stored chunk, a job's log.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

from runtime_config import MAX_JOB_LOG_BYTES

# What a line costs in memory besides its characters (a str object and a tuple slot).
LINE_OVERHEAD = 64
CHUNK_BYTES = 1 << 20  # stored chunks stay about this size (more only for one long line)
TRUNCATED_PREFIX = "conveyor: the log of this job reached its limit of "
"""How the note that ends a capped log starts (a restarted LogActor recognises it)."""


def line_cost(lines: Sequence[str]) -> int:
    """What ``lines`` hold in memory, about: the unit of the gate and of flushes."""
    return sum(map(len, lines)) + LINE_OVERHEAD * len(lines)


def log_bytes(lines: Sequence[str]) -> int:
    """The UTF-8 size of ``lines`` with a newline each (a continued piece counts its
    mark instead: two bytes too many per 64 Ki characters)."""
    if all(map(str.isascii, lines)):
        return sum(map(len, lines)) + len(lines)
    return sum(len(line.encode("utf-8")) + 1 for line in lines)


def truncation_note(limit: int) -> str:
    return (f"{TRUNCATED_PREFIX}{_size(limit)}: further output is not stored "
            "(the job goes on)")


def _size(n: int) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale and n % scale == 0:
            return f"{n // scale} {unit}"
    return f"{n:,} bytes"


@dataclass(frozen=True)
class StoredLog:
    """What is stored of a job's log already (a job the LogActor meets mid-way)."""

    lines: int = 0
    bytes: int = 0
    truncated: bool = False


@dataclass
class _JobBuffer:
    build_id: int
    next_line: int  # number of the next line to be assigned
    logged: int  # bytes of the job's log so far, stored or buffered
    truncated: bool
    first_line: int = 0  # number of the first buffered line
    lines: list[str] = field(default_factory=list)
    cost: int = 0  # line_cost of the buffered lines that came through the gate


@dataclass(frozen=True)
class Chunk:
    build_id: int
    job_row_id: int
    first_line: int
    lines: tuple[str, ...]
    cost: int = 0  # what the gate gets back once it is written


class LogBatcher:
    """Buffers numbered lines per job; ``take()`` empties the buffer into chunks.

    A job's log stops at ``max_job_bytes``: the line that would pass it is replaced
    by one note saying so, and every later line is dropped.
    """

    def __init__(self, *, max_lines: int = 5_000, max_bytes: int = 4 << 20,
                 max_age_s: float = 0.1, chunk_bytes: int = CHUNK_BYTES,
                 max_job_bytes: int = MAX_JOB_LOG_BYTES) -> None:
        self.max_lines = max_lines
        self.max_bytes = max_bytes
        self.max_age_s = max_age_s
        self.chunk_bytes = chunk_bytes
        self.max_job_bytes = max_job_bytes
        self._jobs: dict[int, _JobBuffer] = {}
        self.pending = 0
        self.pending_bytes = 0
        self._oldest: float | None = None

    def knows(self, job_row_id: int) -> bool:
        return job_row_id in self._jobs

    def start_job(self, build_id: int, job_row_id: int, stored: StoredLog) -> None:
        self._jobs[job_row_id] = _JobBuffer(build_id, stored.lines + 1, stored.bytes,
                                            stored.truncated)

    def add(self, job_row_id: int, lines: Sequence[str], now: float) -> int:
        """Buffers ``lines``; returns the cost of those dropped (past the job's cap)."""
        buf = self._jobs[job_row_id]
        cost = line_cost(lines)
        if buf.truncated:
            return cost
        size = log_bytes(lines)
        kept: Sequence[str] = lines
        taken = cost
        if buf.logged + size > self.max_job_bytes:
            kept = self._within_cap(buf, lines)
            size = log_bytes(kept)
            taken = line_cost(kept)
            kept = [*kept, truncation_note(self.max_job_bytes)]  # not from the gate
            buf.truncated = True
        if not buf.lines:
            buf.first_line = buf.next_line
        buf.lines.extend(kept)
        buf.next_line += len(kept)
        buf.logged += size
        buf.cost += taken
        self.pending += len(kept)
        self.pending_bytes += taken
        if self._oldest is None:
            self._oldest = now
        return cost - taken

    def _within_cap(self, buf: _JobBuffer, lines: Sequence[str]) -> list[str]:
        room = self.max_job_bytes - buf.logged
        kept: list[str] = []
        for line in lines:
            size = log_bytes((line,))
            if size > room:
                break
            kept.append(line)
            room -= size
        return kept

    @property
    def limit_text(self) -> str:
        """``max_job_bytes`` for people: "64 MiB"."""
        return _size(self.max_job_bytes)

    def truncated(self, job_row_id: int) -> bool:
        buf = self._jobs.get(job_row_id)
        return buf is not None and buf.truncated

    def should_flush(self, now: float) -> bool:
        if self.pending == 0:
            return False
        if self.pending >= self.max_lines or self.pending_bytes >= self.max_bytes:
            return True
        return self._oldest is not None and now - self._oldest >= self.max_age_s

    def take(self) -> list[Chunk]:
        """Every buffered line, as chunks of about ``chunk_bytes`` at most."""
        chunks: list[Chunk] = []
        for job, buf in self._jobs.items():
            if not buf.lines:
                continue
            first, cost = buf.first_line, buf.cost
            for piece in _pieces(buf.lines, self.chunk_bytes):
                chunks.append(Chunk(buf.build_id, job, first, piece, cost))
                first += len(piece)
                cost = 0  # the chunks of one take are written together
            buf.lines = []
            buf.cost = 0
        self.pending = 0
        self.pending_bytes = 0
        self._oldest = None
        return chunks

    def forget(self, job_row_id: int) -> None:
        """Drop a finished job's counter (call after its last flush)."""
        buf = self._jobs.pop(job_row_id, None)
        if buf is not None and buf.lines:
            raise RuntimeError(f"job {job_row_id} forgotten with {len(buf.lines)} unflushed lines")


def _pieces(lines: list[str], limit: int) -> list[tuple[str, ...]]:
    if line_cost(lines) <= limit:
        return [tuple(lines)]
    pieces: list[tuple[str, ...]] = []
    start, size = 0, 0
    for at, line in enumerate(lines):
        cost = len(line) + LINE_OVERHEAD
        if size + cost > limit and at > start:
            pieces.append(tuple(lines[start:at]))
            start, size = at, 0
        size += cost
    pieces.append(tuple(lines[start:]))
    return pieces


class LineGate:
    """Bounds the log lines in flight between producers and the LogActor, by their
    `line_cost` (bytes, about): backpressure.

    A producer thread acquires before telling lines to the LogActor and blocks while too
    many bytes are waiting to be written, which in turn stops it reading the job's pipe:
    the job slows down instead of the runtime's memory growing.
    """

    def __init__(self, limit: int = 32 << 20) -> None:
        self.limit = limit
        self._in_flight = 0
        self._cond = threading.Condition()

    def acquire(self, n: int, stop: threading.Event | None = None) -> None:
        with self._cond:
            # One batch larger than the limit may always pass when nothing is in flight.
            while self._in_flight and self._in_flight + n > self.limit:
                if stop is not None and stop.is_set():
                    break
                self._cond.wait(0.5)
            self._in_flight += n

    def release(self, n: int) -> None:
        with self._cond:
            self._in_flight = max(0, self._in_flight - n)
            self._cond.notify_all()

    @property
    def in_flight(self) -> int:
        return self._in_flight
