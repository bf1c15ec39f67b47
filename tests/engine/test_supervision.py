"""Supervision: crashed service actors are restarted; past the budget we escalate."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

import pykka
import pytest

from actors.base import ConveyorActor, FailureHook
from actors.logbatch import LineGate
from actors.services import Services
from actors.supervisor import ChildSpec, Supervisor, SupervisorConfig
from broker.memory import MemoryQueue
from store.changes import ChangeFeed
from tests.engine.twice import TwiceSupervisor


@dataclass(frozen=True)
class Crash:
    pass


class Fragile(ConveyorActor):
    kind = "Fragile"
    starts: ClassVar[list[threading.Event]] = []

    def __init__(self, on_crash: FailureHook) -> None:
        super().__init__("fragile", on_crash=on_crash)

    def on_start(self) -> None:
        self.state = "running"
        for event in Fragile.starts:
            if not event.is_set():
                event.set()
                break

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, Crash):
            raise RuntimeError("boom")
        return super().on_receive(message)


@pytest.fixture
def queue() -> Iterator[MemoryQueue]:
    q = MemoryQueue()
    yield q
    q.close()


def start_supervisor(queue: MemoryQueue, budget: int, fatal: list[str],
                     fatal_event: threading.Event,
                     kind: type[Supervisor] = Supervisor) -> tuple[Any, Services]:
    services = Services(feed=ChangeFeed(), gate=LineGate(), owner="test")

    def on_fatal(reason: str) -> None:
        fatal.append(reason)
        fatal_event.set()

    config = SupervisorConfig(restart_budget=budget, backoff_initial_s=0.01,
                              reconcile_every_s=3600)
    specs = [ChildSpec("fragile", lambda hook: Fragile.start(hook))]
    ref = kind.start(services, queue, specs, config, on_fatal)
    ref.proxy().ping().get(timeout=10)  # on_start (children started) has run
    return ref, services


def test_a_crashed_child_is_restarted_as_a_fresh_instance(queue: MemoryQueue) -> None:
    first, second = threading.Event(), threading.Event()
    Fragile.starts = [first, second]
    fatal: list[str] = []
    sup, services = start_supervisor(queue, budget=3, fatal=fatal, fatal_event=threading.Event())
    try:
        assert first.wait(5)
        old = services.get("fragile")
        old.tell(Crash())
        assert second.wait(5), "the child was not restarted"
        sup.proxy().ping().get(timeout=5)  # the restart handler has finished
        new = services.get("fragile")
        assert new is not old and new.is_alive() and not old.is_alive()
        assert fatal == []
    finally:
        sup.stop(block=True, timeout=10)
        pykka.ActorRegistry.stop_all(block=True, timeout=5)


def test_crashing_past_the_budget_escalates(queue: MemoryQueue) -> None:
    events = [threading.Event() for _ in range(3)]
    Fragile.starts = events
    fatal: list[str] = []
    fatal_event = threading.Event()
    sup, services = start_supervisor(queue, budget=1, fatal=fatal, fatal_event=fatal_event)
    try:
        assert events[0].wait(5)
        services.get("fragile").tell(Crash())
        assert events[1].wait(5)
        sup.proxy().ping().get(timeout=5)
        services.get("fragile").tell(Crash())
        assert fatal_event.wait(5), "the supervisor did not escalate"
        assert "fragile" in fatal[0] and "crashed" in fatal[0]
    finally:
        sup.stop(block=True, timeout=10)
        pykka.ActorRegistry.stop_all(block=True, timeout=5)


def test_a_repeated_crash_report_restarts_the_child_once(queue: MemoryQueue) -> None:
    events = [threading.Event() for _ in range(3)]
    Fragile.starts = events
    sup, services = start_supervisor(queue, budget=3, fatal=[], fatal_event=threading.Event(),
                                     kind=TwiceSupervisor)  # handles every message twice
    try:
        assert events[0].wait(5)
        services.get("fragile").tell(Crash())
        assert events[1].wait(5), "the child was not restarted"
        sup.proxy().ping().get(timeout=5)
        counters = sup.proxy().counters.get(timeout=5)
        assert counters["restarts_fragile"] == 1
        assert not events[2].is_set()
    finally:
        sup.stop(block=True, timeout=10)
        pykka.ActorRegistry.stop_all(block=True, timeout=5)
