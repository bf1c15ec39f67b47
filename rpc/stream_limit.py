"""Bounds on calls of one kind running at once: in all, and per user.

Every call holds a server worker thread while it runs (a stream for as long as it follows
a build); without a bound one client could take them all. ``rpc.admission`` keeps one
`Budget` per lane of the server.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from rpc.errors import ResourceExhausted


class Budget:
    """At most ``total`` holders at once, and at most ``per_user`` of them for one user.

    ``what`` names the held thing in refusals ("streams", "calls"); ``state`` says what
    holding means ("open", "in progress").
    """

    def __init__(
        self, what: str, *, total: int | None = None, per_user: int | None = None,
        state: str = "open", hint: str = "",
    ) -> None:
        for name, value in (("total", total), ("per_user", per_user)):
            if value is not None and value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        self.what = what
        self.total = total
        self.per_user = per_user
        self._state = state
        self._hint = hint
        self._held = 0
        self._by_user: dict[str, int] = {}
        self._lock = threading.Lock()

    def refusal(self, user: str | None) -> str | None:
        """Why one more holder (``user``; None: not capped per user) would be refused."""
        with self._lock:
            return self._refusal(user)

    def _refusal(self, user: str | None) -> str | None:
        if user is not None and self.per_user is not None:
            count = self._by_user.get(user, 0)
            if count >= self.per_user:
                return (f"user {user!r} already has {count} {self.what} {self._state}, the "
                        f"limit is {self.per_user}{self._hint}")
        if self.total is not None and self._held >= self.total:
            return (f"the server has {self._held} {self.what} {self._state}, its limit is "
                    f"{self.total}: try again shortly")
        return None

    def take(self, user: str | None) -> None:
        """Count one more holder; `ResourceExhausted` when a bound is reached."""
        with self._lock:
            reason = self._refusal(user)
            if reason is not None:
                raise ResourceExhausted(reason)
            self._held += 1
            if user is not None:
                self._by_user[user] = self._by_user.get(user, 0) + 1

    def give(self, user: str | None) -> None:
        """Release what `take` counted for ``user`` (the same value)."""
        with self._lock:
            self._held -= 1
            if user is not None:
                left = self._by_user[user] - 1
                if left:
                    self._by_user[user] = left
                else:
                    del self._by_user[user]

    @contextmanager
    def hold(self, user: str) -> Iterator[None]:
        """Count one holder of ``user`` while the block runs; refuse one too many."""
        self.take(user)
        try:
            yield
        finally:
            self.give(user)

    def held(self) -> int:
        with self._lock:
            return self._held

    def held_by(self, user: str) -> int:
        with self._lock:
            return self._by_user.get(user, 0)

    def full(self) -> bool:
        with self._lock:
            return self.total is not None and self._held >= self.total


class StreamLimit(Budget):
    """Server streams (log follows, build watches): per user, and optionally in all."""

    def __init__(self, per_user: int, total: int | None = None) -> None:
        super().__init__("streams", total=total, per_user=per_user,
                         hint=": close one (or stop following) first")

    def open_streams(self, user: str) -> int:
        return self.held_by(user)
