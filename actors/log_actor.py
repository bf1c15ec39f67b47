"""LogActor: numbers job output lines, writes them to the database in chunks, wakes readers.

Lines arrive in batches from backend reader threads; they are buffered per job and
flushed as chunk rows of about a megabyte when the buffer is big enough or old enough.
Readers (StreamBuildLogs) read from the database and are woken through the ChangeFeed,
so a line reaches a follower about one flush interval after it was printed. A job's log
stops at ``max_job_bytes`` (see `LogBatcher`); the job's actor learns it with
`LogsFlushed` and says so in the job's reason.
"""

from __future__ import annotations

import logging
import time
from typing import Any, assert_never

import pykka
from pykka.typing import ActorMemberMixin, proxy_method

import store
from actors.base import ActorThread, ConveyorActor, FailureHook, tell_safely
from actors.logbatch import TRUNCATED_PREFIX, Chunk, LineGate, LogBatcher, StoredLog
from actors.messages import AppendLines, FlushJob, LogMessage, LogsFlushed, Tick
from observability import metrics
from runtime_config import MAX_JOB_LOG_BYTES
from store.changes import ChangeFeed
from store.logs import log_extent
from store.records import LogChunkInit

log = logging.getLogger(__name__)


class LogActor(ConveyorActor):
    kind = "LogActor"
    stop_on_failure = True  # its ticker goes with it (and what it holds is flushed)

    def __init__(
        self,
        feed: ChangeFeed,
        gate: LineGate,
        *,
        max_lines: int = 20_000,
        max_bytes: int = 4 << 20,
        max_age_s: float = 0.1,
        max_job_bytes: int = MAX_JOB_LOG_BYTES,
        on_crash: FailureHook | None = None,
    ) -> None:
        super().__init__("logs", on_crash=on_crash)
        self.feed = feed
        self.gate = gate
        self.batcher = LogBatcher(max_lines=max_lines, max_bytes=max_bytes,
                                  max_age_s=max_age_s, max_job_bytes=max_job_bytes)
        self._unwritten: list[Chunk] = []
        self._ticker = ActorThread("log-ticker", self._tick_loop)

    def on_start(self) -> None:
        self.state = "running"
        self._ticker.start()

    def on_stop(self) -> None:
        self._ticker.stop()
        self._flush()

    def _tick_loop(self, stop: Any) -> None:
        interval = max(self.batcher.max_age_s / 2, 0.01)
        while not stop.wait(interval):
            if self.batcher.pending or self._unwritten:
                tell_safely(self.actor_ref, Tick())

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, LogMessage):
            self._handle(message)
            return None
        return super().on_receive(message)

    def _handle(self, message: LogMessage) -> None:
        match message:
            case AppendLines():
                self._append(message)
            case Tick():
                if self._unwritten or self.batcher.should_flush(time.monotonic()):
                    self._flush()
            case FlushJob():
                self._flush()
                truncated = self.batcher.truncated(message.job_row_id)
                if not self._unwritten:
                    self.batcher.forget(message.job_row_id)
                note = f"log truncated at {self.batcher.limit_text}" if truncated else ""
                tell_safely(message.reply_to, LogsFlushed(message.job_row_id, note))
            case _:
                assert_never(message)

    def flush(self) -> int:
        """Write everything buffered now; returns lines still unwritten (0 normally)."""
        self._flush()
        return sum(len(c.lines) for c in self._unwritten)

    def _append(self, message: AppendLines) -> None:
        job = message.job_row_id
        if not self.batcher.knows(job):
            self.batcher.start_job(message.build_id, job,
                                   StoredLog() if message.fresh else _stored(job))
        dropped = self.batcher.add(job, message.lines, time.monotonic())
        if dropped:
            self.gate.release(dropped)
            self.counters["dropped_cost"] += dropped  # line_cost of lines past the cap
        self.counters["lines_received"] += len(message.lines)
        metrics.log_lines_ingested(len(message.lines))  # metrics
        if (self.batcher.pending >= self.batcher.max_lines
                or self.batcher.pending_bytes >= self.batcher.max_bytes):
            self._flush()

    def _flush(self) -> None:
        chunks = self._unwritten + self.batcher.take()
        if not chunks:
            return
        try:
            store.append_log_chunks(
                [LogChunkInit(c.job_row_id, c.first_line, c.lines) for c in chunks]
            )
        except store.StoreError as exc:
            # Keep the lines and try again on the next tick: logs must not vanish.
            self._unwritten = chunks
            self.counters["flush_errors"] += 1
            metrics.log_flush_failed()  # metrics
            self.state = f"retrying: {exc}"
            log.warning("log flush failed, will retry: %s", exc)
            return
        self._unwritten = []
        self.state = "running"
        written = sum(len(c.lines) for c in chunks)
        self.counters["lines_written"] += written
        metrics.log_lines_written(written)  # metrics
        self.counters["chunks_written"] += len(chunks)
        self.gate.release(sum(c.cost for c in chunks))
        for build_id in {c.build_id for c in chunks}:
            self.feed.publish(build_id)


def _stored(job_row_id: int) -> StoredLog:
    """What a dead executor (or this actor before a restart) stored of the job's log."""
    extent = log_extent(job_row_id)
    return StoredLog(extent.lines, extent.bytes, extent.last_line.startswith(TRUNCATED_PREFIX))


class LogActorProxy(ActorMemberMixin, pykka.ActorProxy[LogActor]):
    """Typed proxy for asks (tests, shutdown)."""

    flush = proxy_method(LogActor.flush)
    describe = proxy_method(LogActor.describe)
    ping = proxy_method(LogActor.ping)
