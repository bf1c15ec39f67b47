"""A bound on the server streams one user holds open at once.

Every stream holds a server worker thread for as long as it follows a build; without a
bound one client could take them all.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from rpc.errors import ResourceExhausted


class StreamLimit:
    def __init__(self, per_user: int) -> None:
        if per_user < 1:
            raise ValueError(f"per_user must be >= 1, got {per_user}")
        self.per_user = per_user
        self._open: dict[str, int] = {}
        self._lock = threading.Lock()

    @contextmanager
    def hold(self, user: str) -> Iterator[None]:
        """Count one open stream of ``user`` while the block runs; refuse one too many."""
        with self._lock:
            count = self._open.get(user, 0)
            if count >= self.per_user:
                raise ResourceExhausted(
                    f"user {user!r} already has {count} streams open, the limit is "
                    f"{self.per_user}: close one (or stop following) first"
                )
            self._open[user] = count + 1
        try:
            yield
        finally:
            with self._lock:
                left = self._open[user] - 1
                if left:
                    self._open[user] = left
                else:
                    del self._open[user]

    def open_streams(self, user: str) -> int:
        with self._lock:
            return self._open.get(user, 0)
