"""Starting threads and actors for an actor, on a thread of its own.

``Thread.start`` waits until the new thread runs: milliseconds on a loaded machine. An
actor that started its helpers itself (a BuildActor its JobActors, the K8sActor a log
follower per pod) would make every message queued behind it wait that long; in a burst
of finishing jobs, the dependents' launches would pay it in series.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable

from actors.base import ActorThread

log = logging.getLogger(__name__)


class Launcher:
    """Runs submitted start-ups in order on its thread; those left at ``stop()`` are not run."""

    def __init__(self, name: str) -> None:
        self._todo: queue.SimpleQueue[Callable[[], object] | None] = queue.SimpleQueue()
        self._thread = ActorThread(name, self._run)

    def start(self) -> None:
        self._thread.start()

    def submit(self, start_up: Callable[[], object]) -> None:
        self._todo.put(start_up)

    def stop(self, timeout: float = 5.0) -> None:
        self._todo.put(None)  # wakes the thread; it sees the stop event
        self._thread.stop(timeout)

    def _run(self, stop: threading.Event) -> None:
        while True:
            start_up = self._todo.get()
            if start_up is None or stop.is_set():
                return
            try:
                start_up()
            except Exception:
                log.exception("a start-up submitted to %s failed", threading.current_thread().name)
