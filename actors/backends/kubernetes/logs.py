"""Following one pod's log into the LogActor, exactly once across reconnects and takeovers.

A follower re-reads the container's log from its start whenever it has to reconnect
(dropped stream, API error, a new executor adopting the pod), so what it delivers is
decided by position: the :class:`LogCursor` says how many ordinary lines of the job are
already stored or sent, and the follower skips that many before sending again. Markers
are parsed on every pass; step events already told in this process are not told again,
and after a takeover they are all told again (they are idempotent upserts).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

import pykka

import store
from actors.base import ActorThread, tell_safely
from actors.logbatch import line_cost
from actors.messages import AppendLines, RunJob, StepEventSeen
from actors.services import Services
from k8s.client import KubeApi, KubeError, Stream
from workflow.markers import MarkerError, OutputReader, Segment

log = logging.getLogger(__name__)

# After a clean end of the stream, how long to wait for the pod to be seen terminal
# before assuming the stream was cut early and reading the log again.
EOF_GRACE_S = 10.0
RECONNECT_BASE_S = 0.2
RECONNECT_CAP_S = 5.0


@dataclass
class LogCursor:
    """Where one job's log stands; used by one follower at a time.

    Positions count ordinary output lines over the whole job (every pod of it, and the
    notes the backend adds between retried pods). ``handled``: lines before it are
    stored or sent. ``base``: position of the current pod's first line.
    ``events_handled``: step events of the current pod already told.
    """

    handled: int = 0
    base: int = 0
    events_handled: int = 0
    read_store: bool = False  # adopted: lines already stored by a dead executor count

    def finish_pod(self, lines: int) -> None:
        self.base += lines
        self.events_handled = 0


def send_lines(run: RunJob, lines: list[str], services: Services,
               stop: threading.Event | None = None) -> None:
    """Tell a batch of a job's lines to the LogActor, within the backpressure gate."""
    cost = line_cost(lines)
    services.gate.acquire(cost, stop)
    message = AppendLines(run.build_id, run.job_row_id, tuple(lines))
    try:
        services.log.tell(message)
    except pykka.ActorDeadError:
        services.gate.release(cost)
        log.error("log actor is down: %d lines of %s lost", len(lines), run.job_key)


def add_note(run: RunJob, cursor: LogCursor, text: str, services: Services) -> None:
    """A line the backend writes into the job's log itself, at the cursor's position."""
    if cursor.base >= cursor.handled:
        send_lines(run, [text], services)
        cursor.handled = cursor.base + 1
    cursor.finish_pod(1)


class _Pass:
    """One read of the log from its start: numbers lines and events as it goes."""

    def __init__(self, follower: LogFollower) -> None:
        self.f = follower
        self.lines = 0
        self.events = 0

    def feed(self, segments: list[Segment]) -> None:
        f, cursor = self.f, self.f.cursor
        for segment in segments:
            if isinstance(segment, list):
                position = cursor.base + self.lines  # of the segment's first line
                self.lines += len(segment)
                fresh = segment[max(0, cursor.handled - position) :]
                if fresh:
                    send_lines(f.run, fresh, f.services, f.thread.stop_event)
                    cursor.handled = position + len(segment)
            elif isinstance(segment, MarkerError):
                # The runner script and the parser disagree: the line is kept as output.
                log.error("job %s: %s", f.run.job_key, segment)
            else:
                if self.events >= cursor.events_handled:
                    tell_safely(f.run.reply_to, StepEventSeen(segment))
                    cursor.events_handled = self.events + 1
                self.events += 1


class LogFollower:
    """A thread that follows one pod's container log until the pod ended and it is read.

    ``terminal`` is set by the backend once the pod is seen terminal or deleted;
    ``on_done(lines)`` is called (from this thread) when the log is drained, with the
    number of ordinary lines the pod wrote. Not called when stopped.
    """

    def __init__(
        self,
        *,
        api: KubeApi,
        pod: str,
        container: str,
        run: RunJob,
        nonce: str,
        cursor: LogCursor,
        services: Services,
        terminal: threading.Event,
        on_done: Callable[[int], None],
        on_reconnect: Callable[[], None] = lambda: None,
    ) -> None:
        self.api, self.pod, self.container = api, pod, container
        self.run, self.cursor, self.services = run, cursor, services
        self.terminal, self.on_done, self.on_reconnect = terminal, on_done, on_reconnect
        self.nonce = nonce
        self._stream: Stream | None = None
        self._lock = threading.Lock()
        self.thread = ActorThread(f"k8s-log-{pod}", self._loop)

    def start(self) -> None:
        self.thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self.thread.stop_event.set()
        self.terminal.set()  # wakes a wait for the pod's end; the stop flag wins after it
        with self._lock:
            if self._stream is not None:
                self._stream.close()
        self.thread.stop(timeout)

    def _loop(self, stop: threading.Event) -> None:
        if self.cursor.read_store:
            self._skip_stored(stop)
        delay = RECONNECT_BASE_S
        broken = 0
        while not stop.is_set():
            try:
                outcome = self._read_once(stop)
            except Exception:  # a bug must not leave the job waiting forever
                log.exception("job %s: following the log of %s failed", self.run.job_key,
                              self.pod)
                broken += 1
                outcome = None
                if broken >= 5 and self.terminal.is_set():
                    outcome = max(0, self.cursor.handled - self.cursor.base)
                    self.cursor.finish_pod(outcome)
            if outcome is not None:
                self.on_done(outcome)
                return
            if stop.is_set():
                return
            self.on_reconnect()
            stop.wait(delay)
            delay = min(RECONNECT_CAP_S, delay * 2)

    def _skip_stored(self, stop: threading.Event) -> None:
        """After a takeover: the lines the dead executor stored are not sent again."""
        delay = RECONNECT_BASE_S
        while not stop.is_set():
            try:
                stored = store.log_line_count(self.run.job_row_id)
            except store.StoreError as exc:
                log.warning("job %s: cannot count stored log lines yet: %s", self.run.job_key, exc)
                stop.wait(delay)
                delay = min(RECONNECT_CAP_S, delay * 2)
                continue
            self.cursor.handled = max(self.cursor.handled, stored)
            self.cursor.read_store = False
            return

    def _read_once(self, stop: threading.Event) -> int | None:
        """One pass over the log; the pod's line count once drained, else None."""
        try:
            stream = self.api.follow_log(self.pod, self.container)
        except KubeError as exc:
            if exc.status in (400, 404) and self.terminal.is_set():
                # The pod is gone or never ran its container: nothing more to read.
                log.warning("job %s: log of pod %s unavailable after it ended: %s",
                            self.run.job_key, self.pod, exc)
                # Its length is unknown: count what was delivered of it.
                lines = max(0, self.cursor.handled - self.cursor.base)
                self.cursor.finish_pod(lines)
                return lines
            log.info("job %s: cannot read the log of %s yet: %s", self.run.job_key, self.pod, exc)
            return None
        with self._lock:
            self._stream = stream
        if stop.is_set():
            stream.close()
            return None
        reading = _Pass(self)
        reader = OutputReader(self.nonce)
        try:
            for chunk in stream.chunks():
                reading.feed(reader.feed(chunk))
        except (OSError, KubeError) as exc:
            if not stop.is_set():
                log.info("job %s: log stream of %s broke, reconnecting: %s",
                         self.run.job_key, self.pod, exc)
            return None
        finally:
            with self._lock:
                self._stream = None
            stream.close()
        # A clean end: the container finished, unless the stream was cut early. Only a
        # pod seen terminal proves it; otherwise read again (the cursor skips what is sent).
        if not self.terminal.wait(EOF_GRACE_S) or stop.is_set():
            return None
        reading.feed(reader.close())  # output after the last newline is complete now
        self.cursor.finish_pod(reading.lines)
        return reading.lines
