"""The log batching policy (pure): number lines per job, flush on size or age.

Kept apart from the LogActor so the policy can be tested without threads.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field


@dataclass
class _JobBuffer:
    build_id: int
    next_line: int  # number of the next line to be assigned
    first_line: int = 0  # number of the first buffered line
    lines: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Chunk:
    build_id: int
    job_row_id: int
    first_line: int
    lines: tuple[str, ...]


class LogBatcher:
    """Buffers numbered lines per job; ``take()`` empties the buffer into chunks."""

    def __init__(self, *, max_lines: int = 5_000, max_age_s: float = 0.1) -> None:
        self.max_lines = max_lines
        self.max_age_s = max_age_s
        self._jobs: dict[int, _JobBuffer] = {}
        self.pending = 0
        self._oldest: float | None = None

    def knows(self, job_row_id: int) -> bool:
        return job_row_id in self._jobs

    def start_job(self, build_id: int, job_row_id: int, lines_already_stored: int) -> None:
        self._jobs[job_row_id] = _JobBuffer(build_id, lines_already_stored + 1)

    def add(self, job_row_id: int, lines: tuple[str, ...], now: float) -> None:
        buf = self._jobs[job_row_id]
        if not buf.lines:
            buf.first_line = buf.next_line
        buf.lines.extend(lines)
        buf.next_line += len(lines)
        self.pending += len(lines)
        if self._oldest is None:
            self._oldest = now

    def should_flush(self, now: float) -> bool:
        if self.pending == 0:
            return False
        if self.pending >= self.max_lines:
            return True
        return self._oldest is not None and now - self._oldest >= self.max_age_s

    def take(self) -> list[Chunk]:
        chunks = [
            Chunk(buf.build_id, job, buf.first_line, tuple(buf.lines))
            for job, buf in self._jobs.items()
            if buf.lines
        ]
        for buf in self._jobs.values():
            buf.lines = []
        self.pending = 0
        self._oldest = None
        return chunks

    def forget(self, job_row_id: int) -> None:
        """Drop a finished job's counter (call after its last flush)."""
        buf = self._jobs.pop(job_row_id, None)
        if buf is not None and buf.lines:
            raise RuntimeError(f"job {job_row_id} forgotten with {len(buf.lines)} unflushed lines")


class LineGate:
    """Bounds the lines in flight between producers and the LogActor (backpressure).

    A producer thread acquires before telling lines to the LogActor and blocks while too
    many are waiting to be written, which in turn stops it reading the job's pipe: the
    job slows down instead of the runtime's memory growing.
    """

    def __init__(self, limit: int = 200_000) -> None:
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
