"""An in-process change feed: log streamers and build watchers wake when a build changes.

Versions come from one global counter, so a version is comparable across builds and
forgetting a build is safe: a forgotten build reports the version at which it was
forgotten, which can only make a waiter wake early (it re-reads the database and waits
again), never miss a change. Writers in other processes do not reach this feed; waiters
time out and poll the database, which keeps multi-replica setups correct.
"""

from __future__ import annotations

import threading
from collections import OrderedDict


class _Entry:
    __slots__ = ("condition", "version", "waiters")

    def __init__(self, lock: threading.Lock, version: int) -> None:
        self.version = version
        self.waiters = 0
        self.condition = threading.Condition(lock)


class ChangeFeed:
    """Per-build change versions with blocking waits; thread-safe, bounded memory."""

    def __init__(self, max_builds: int = 4096) -> None:
        if max_builds < 1:
            raise ValueError(f"max_builds must be >= 1, got {max_builds}")
        self._max_builds = max_builds
        self._lock = threading.Lock()
        self._entries: OrderedDict[int, _Entry] = OrderedDict()
        self._counter = 0
        self._floor = 0  # the highest version of any forgotten build

    def publish(self, build_id: int) -> None:
        """Record that ``build_id`` changed and wake its waiters."""
        with self._lock:
            self._counter += 1
            entry = self._entries.get(build_id)
            if entry is None:
                entry = self._entries[build_id] = _Entry(self._lock, self._counter)
            else:
                entry.version = self._counter
                self._entries.move_to_end(build_id)
            if entry.waiters:
                entry.condition.notify_all()
            self._forget_idle()

    def version(self, build_id: int) -> int:
        """The version of the latest change of ``build_id`` (0 before any change)."""
        with self._lock:
            return self._version(build_id)

    def wait(self, build_id: int, since: int, timeout: float) -> int:
        """Block until ``build_id`` has a version above ``since`` or ``timeout`` seconds
        pass; returns the build's version (unchanged on timeout: poll then)."""
        with self._lock:
            if self._version(build_id) > since:
                return self._version(build_id)
            entry = self._entries.get(build_id)
            if entry is None:
                entry = self._entries[build_id] = _Entry(self._lock, self._floor)
            entry.waiters += 1
            try:
                entry.condition.wait_for(lambda: entry.version > since, timeout)
            finally:
                entry.waiters -= 1
            version = entry.version
            self._forget_idle()
            return version

    def waiters(self, build_id: int) -> int:
        """How many threads are blocked in `wait` on ``build_id`` right now."""
        with self._lock:
            entry = self._entries.get(build_id)
            return 0 if entry is None else entry.waiters

    def _version(self, build_id: int) -> int:
        entry = self._entries.get(build_id)
        return self._floor if entry is None else entry.version

    def _forget_idle(self) -> None:
        excess = len(self._entries) - self._max_builds
        if excess <= 0:
            return
        for build_id in list(self._entries):  # oldest change first
            entry = self._entries[build_id]
            if entry.waiters:
                continue  # someone blocks on its condition: keep it
            del self._entries[build_id]
            self._floor = max(self._floor, entry.version)
            excess -= 1
            if excess == 0:
                return

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)
