"""What every Conveyor actor shares: self-description, counters, failure reporting."""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from types import TracebackType
from typing import Any

import pykka

from actors.messages import Describe
from observability.description import ActorDescription

log = logging.getLogger(__name__)

FailureHook = Callable[[str, BaseException | None], None]


class ConveyorActor(pykka.ThreadingActor):
    """Base actor: describes itself for the console and reports its own crash upward.

    pykka has no links between actors: when a ``tell``'d message raises, pykka logs it,
    stops the actor and calls ``on_failure`` on its thread. We turn that into a call of
    ``on_crash`` (the supervisor's or parent's hook), so nothing fails silently.
    """

    kind = "Actor"
    # Run on_stop after a crash too (pykka does not): for actors whose on_stop only
    # releases what they own (threads, idle child actors, a gauge), so that none outlives
    # them beside their restarted successor.
    stop_on_failure = False

    def __init__(self, key: str, *, on_crash: FailureHook | None = None) -> None:
        super().__init__()
        self.key = key
        self.started_at = time.monotonic()
        self.counters: Counter[str] = Counter()
        self.state = "starting"
        self.build_id = 0
        self.job_key = ""
        self._on_crash = on_crash

    # -- introspection ---------------------------------------------------------------
    def describe(self) -> ActorDescription:
        return ActorDescription(
            kind=self.kind,
            key=self.key,
            state=self.state,
            age_seconds=time.monotonic() - self.started_at,
            mailbox=self.actor_inbox.qsize() if hasattr(self.actor_inbox, "qsize") else 0,
            counters=dict(self.counters),
            build_id=self.build_id,
            job_key=self.job_key,
        )

    def ping(self) -> str:
        return self.state

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, Describe):
            return self.describe()
        self.counters["unknown_messages"] += 1
        log.warning("%s %s ignored an unknown message %r", self.kind, self.key, message)
        return None

    def on_failure(
        self,
        exception_type: type[BaseException] | None,
        exception_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.state = "crashed"
        log.error(
            "%s %s crashed: %r", self.kind, self.key, exception_value,
            extra={"build_id": self.build_id, "job_key": self.job_key},
        )
        if self.stop_on_failure:
            try:
                self.on_stop()
            except Exception:
                log.exception("%s %s: stopping after the crash failed", self.kind, self.key)
        if self._on_crash is not None:
            self._on_crash(self.key, exception_value)


class ActorThread:
    """A named blocking loop owned by an actor: started in on_start, stopped in on_stop.

    ``target(stop)`` must return soon after ``stop`` is set.
    """

    def __init__(self, name: str, target: Callable[[threading.Event], None]) -> None:
        self.stop_event = threading.Event()
        self._target = target
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        if not self.stop_event.is_set():  # (a start handed to a Launcher may come late)
            self._thread.start()

    def _run(self) -> None:
        try:
            self._target(self.stop_event)
        except Exception:
            log.exception("thread %s died", self._thread.name)

    def stop(self, timeout: float = 5.0) -> None:
        self.stop_event.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.error("thread %s did not stop within %.1fs", self._thread.name, timeout)


def tell_safely(ref: pykka.ActorRef[Any] | None, message: Any) -> bool:
    """Tell, ignoring an actor that already stopped (it no longer cares)."""
    if ref is None:
        return False
    try:
        ref.tell(message)
    except pykka.ActorDeadError:
        return False
    return True
