"""The moments one BuildActor sees, turned into queue-time and release-latency samples.

Kept out of the actor so its instrumentation stays three calls, and testable with a
fake clock.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from observability import metrics


class BuildTimings:
    """Per build: when each job became ready and when each finished (monotonic)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._ready: dict[str, float] = {}
        self._finished: dict[str, float] = {}

    def job_ready(self, key: str) -> None:
        """The scheduler decided to start ``key`` (it may wait QUEUED for a slot)."""
        self._ready.setdefault(key, self._clock())

    def job_started(self, key: str, needs: Sequence[str]) -> None:
        """``key`` goes RUNNING now: observe its queue time and its release latency.

        Release latency needs the finish of every need; needs restored from an earlier
        executor (takeover) have no moment here, so no sample is taken for them.
        """
        now = self._clock()
        ready = self._ready.pop(key, None)
        if ready is not None:
            metrics.job_queued_for(now - ready)
        if needs and all(n in self._finished for n in needs):
            metrics.dependency_released(now - max(self._finished[n] for n in needs))

    def job_finished(self, key: str) -> None:
        self._finished[key] = self._clock()
