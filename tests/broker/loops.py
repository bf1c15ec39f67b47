"""Run a blocking consume loop on a thread the test owns, and always stop and join it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any


class Loop:
    """``with Loop(queue.consume_builds, handler, 1) as loop:`` runs the loop on a thread.

    The loop gets ``stop`` (and ``ready=``) appended; leaving the block sets ``stop``,
    joins the thread and re-raises whatever the loop raised.
    """

    def __init__(self, target: Callable[..., None], *args: Any, name: str = "test-loop") -> None:
        self.stop = threading.Event()
        self.ready = threading.Event()
        self.finished = threading.Event()
        self.error: BaseException | None = None
        self.stopped_in: float | None = None
        self._target = target
        self._args = args
        self._thread = threading.Thread(target=self._run, name=name)

    def _run(self) -> None:
        try:
            self._target(*self._args, self.stop, ready=self.ready)
        except BaseException as exc:
            self.error = exc
        finally:
            self.finished.set()

    def __enter__(self) -> Loop:
        self._thread.start()
        return self

    def halt(self, timeout: float = 10.0) -> float:
        """Set ``stop``, join, and return how long the loop took to return."""
        began = time.monotonic()
        self.stop.set()
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise AssertionError(f"{self._thread.name} did not stop within {timeout}s")
        self.stopped_in = time.monotonic() - began
        return self.stopped_in

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._thread.is_alive():
            self.halt()
        if self.error is not None and exc is None:
            raise self.error


class Collector:
    """A handler that keeps what it receives and lets tests wait for a count."""

    def __init__(self) -> None:
        self.items: list[Any] = []
        self._cond = threading.Condition()

    def __call__(self, item: Any) -> None:
        with self._cond:
            self.items.append(item)
            self._cond.notify_all()

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Any]:
        """Wait until at least ``count`` items arrived; return a snapshot (fails on timeout)."""
        with self._cond:
            if not self._cond.wait_for(lambda: len(self.items) >= count, timeout):
                raise AssertionError(
                    f"expected {count} items within {timeout}s, got {len(self.items)}: "
                    f"{self.items!r}"
                )
            return list(self.items)

    def stays_below(self, count: int, window: float) -> bool:
        """True if fewer than ``count`` items arrive within ``window`` seconds.

        Used to show that something does NOT happen (e.g. a delivery beyond prefetch).
        """
        with self._cond:
            return not self._cond.wait_for(lambda: len(self.items) >= count, window)
