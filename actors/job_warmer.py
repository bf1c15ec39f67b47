"""Starting JobActors ahead of need, on a thread of their own.

Starting an actor starts a thread, and ``Thread.start`` waits until the new thread runs:
milliseconds on a loaded machine. A BuildActor that did that itself would make the
results queued in its mailbox wait behind it, so the dependents of a burst of finishing
jobs would launch late. The warmer does it on its own thread and hands each idle actor
back with a message.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from typing import Any

import pykka

from actors.base import ActorThread

log = logging.getLogger(__name__)

StartActor = Callable[[], pykka.ActorRef[Any]]
Deliver = Callable[[str, pykka.ActorRef[Any]], bool]


class JobWarmer:
    """Runs ``start()`` for each requested key on its thread, then ``deliver(key, ref)``.

    ``deliver`` returns False when its receiver is gone: the fresh actor is then stopped,
    as is one started after ``stop()``.
    """

    def __init__(self, name: str, deliver: Deliver) -> None:
        self._deliver = deliver
        self._requests: queue.SimpleQueue[tuple[str, StartActor] | None] = queue.SimpleQueue()
        self._thread = ActorThread(name, self._run)

    def start(self) -> None:
        self._thread.start()

    def request(self, key: str, start: StartActor) -> None:
        self._requests.put((key, start))

    def stop(self, timeout: float = 5.0) -> None:
        self._requests.put(None)  # wakes the thread; it sees the stop event
        self._thread.stop(timeout)

    def _run(self, stop: threading.Event) -> None:
        while True:
            item = self._requests.get()
            if item is None or stop.is_set():
                return
            key, start = item
            try:
                ref = start()
            except Exception:  # the build starts it itself when the job is ready
                log.exception("could not start the actor of %s ahead of time", key)
                continue
            if stop.is_set() or not self._deliver(key, ref):
                ref.stop(block=False)
