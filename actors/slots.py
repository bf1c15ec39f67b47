"""The global cap on concurrently running jobs (CONVEYOR_MAX_JOBS), shared by builds.

A job that is ready but finds no free slot waits in a FIFO (its status is QUEUED); when
a slot frees, the next waiter's BuildActor is told ``SlotGranted``. Urgent jobs — those
of builds taken over from a dead executor, interrupted once already — wait ahead of the
others (FIFO among themselves). Thread-safe: every BuildActor calls it from its own
thread.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from typing import Any

import pykka

from actors.base import tell_safely
from actors.messages import SlotGranted


class JobSlots:
    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError(f"the job cap must be at least 1, got {limit}")
        self.limit = limit
        self._used: set[tuple[str, str]] = set()
        self._waiting: deque[tuple[pykka.ActorRef[Any], str, str]] = deque()
        self._urgent = 0  # how many of the first waiters are urgent
        self._lock = threading.Lock()

    def request(self, ref: pykka.ActorRef[Any], owner: str, key: str,
                urgent: bool = False) -> bool:
        """True when granted now; otherwise ``SlotGranted(key)`` is told to ``ref`` later."""
        with self._lock:
            if len(self._used) < self.limit and not self._waiting:
                self._used.add((owner, key))
                return True
            if urgent:
                self._waiting.insert(self._urgent, (ref, owner, key))
                self._urgent += 1
            else:
                self._waiting.append((ref, owner, key))
            return False

    def release(self, owner: str, key: str) -> None:
        """Free the slot of a finished job, or withdraw a job still waiting for one."""
        grant: tuple[pykka.ActorRef[Any], str, str] | None = None
        with self._lock:
            if (owner, key) in self._used:
                self._used.discard((owner, key))
            else:
                self._withdraw(lambda w: (w[1], w[2]) == (owner, key))
            while self._waiting and len(self._used) < self.limit:
                ref, next_owner, next_key = self._waiting.popleft()
                self._urgent = max(0, self._urgent - 1)
                if ref.is_alive():
                    self._used.add((next_owner, next_key))
                    grant = (ref, next_owner, next_key)
                    break
        if grant is not None and not tell_safely(grant[0], SlotGranted(grant[2])):
            self.release(grant[1], grant[2])  # its build is gone: pass the slot on

    def release_owner(self, owner: str) -> None:
        """Free everything a build held (it ended or crashed)."""
        with self._lock:
            keys = [k for (o, k) in self._used if o == owner]
            self._withdraw(lambda w: w[1] == owner)
        for key in keys:
            self.release(owner, key)

    def _withdraw(self, gone: Callable[[tuple[pykka.ActorRef[Any], str, str]], bool]) -> None:
        urgent = [w for w in list(self._waiting)[:self._urgent] if not gone(w)]
        rest = [w for w in list(self._waiting)[self._urgent:] if not gone(w)]
        self._waiting = deque(urgent + rest)
        self._urgent = len(urgent)

    @property
    def in_use(self) -> int:
        with self._lock:
            return len(self._used)

    @property
    def waiting(self) -> int:
        with self._lock:
            return len(self._waiting)
