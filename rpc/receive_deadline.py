"""Deadlines on receiving a call's request: one named thread fires every overdue one.

gRPC's synchronous server waits for a unary call's request message without a limit, on
a worker thread: a client that sends headers and then nothing would hold that thread
for as long as it keeps the connection. ``rpc.gatekeeper`` arms a deadline before it
reads the request and disarms it once the message is there; when the deadline passes
first, ``on_expiry`` ends the call.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)


class Alarm:
    """One armed deadline (disarm it with ``Watchdog.disarm``)."""

    __slots__ = ("at", "live", "on_expiry")

    def __init__(self, at: float, on_expiry: Callable[[], None]) -> None:
        self.at = at
        self.on_expiry = on_expiry
        self.live = True


class Watchdog:
    """Calls ``on_expiry`` of every alarm not disarmed by its deadline, on one thread.

    The thread starts with the first alarm and ends with `close` (or the process).
    """

    def __init__(self, name: str = "grpc-receive-deadline",
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._name = name
        self._clock = clock
        self._heap: list[tuple[float, int, Alarm]] = []
        self._order = itertools.count()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False

    def arm(self, seconds: float, on_expiry: Callable[[], None]) -> Alarm:
        alarm = Alarm(self._clock() + seconds, on_expiry)
        with self._cond:
            if self._closed:
                alarm.live = False  # the server is stopping: its calls are being ended
                return alarm
            heapq.heappush(self._heap, (alarm.at, next(self._order), alarm))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self._name,
                                                daemon=True)
                self._thread.start()
            elif self._heap[0][2] is alarm:
                self._cond.notify()  # due before the one the thread sleeps until
        return alarm

    def disarm(self, alarm: Alarm) -> bool:
        """True when disarmed in time; False when the alarm had fired already."""
        with self._cond:
            fired = not alarm.live
            alarm.live = False
            return not fired

    def close(self) -> None:
        with self._cond:
            self._closed = True
            thread, self._thread = self._thread, None
            self._heap.clear()
            self._cond.notify()
        if thread is not None:
            thread.join()

    def pending(self) -> int:
        with self._cond:
            return sum(1 for _, _, alarm in self._heap if alarm.live)

    def _run(self) -> None:
        while True:
            due: list[Alarm] = []
            with self._cond:
                if self._closed:
                    return
                now = self._clock()
                while self._heap and (self._heap[0][0] <= now or not self._heap[0][2].live):
                    _, _, alarm = heapq.heappop(self._heap)
                    if alarm.live:
                        alarm.live = False
                        due.append(alarm)
                if not due:
                    wait = self._heap[0][0] - now if self._heap else None
                    self._cond.wait(wait)
                    continue
            for alarm in due:
                try:
                    alarm.on_expiry()
                except Exception:
                    log.exception("ending a call whose request did not come failed")
