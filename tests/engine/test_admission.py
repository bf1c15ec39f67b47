"""Which builds an executor starts (actors.admission): duplicates, backlog, takeover.

Pure rules, no threads. The stateful test delivers messages (each possibly many times),
ends BuildActors (each report possibly repeated or stale), lists orphans and stops
accepting in any order, and checks after every step what the issue promises: at most
one BuildActor per build, every message settled once, takeovers ahead of new builds.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from actors.admission import Admission, Decision, Duplicate, GiveBack, Request, Start


@dataclass(eq=False)
class Delivery:
    name: str
    settled: list[str] = field(default_factory=list)

    def ack(self) -> None:
        self._settle("ack")

    def reject(self, requeue: bool) -> None:
        self._settle("requeue" if requeue else "dead")

    def _settle(self, how: str) -> None:
        # RabbitMQ closes the channel on a second ack of one delivery tag.
        assert not self.settled, f"{self.name} settled twice: {self.settled} then {how}"
        self.settled.append(how)


def starts(decisions: list[Decision]) -> list[int]:
    return [d.request.build_id for d in decisions if isinstance(d, Start)]


def message(build_id: int, attempt: int = 1, name: str = "") -> Request:
    return Request(build_id, attempt, Delivery(name or f"m{build_id}.{attempt}"))


def test_a_duplicate_waiting_in_the_backlog_is_acknowledged_not_started() -> None:
    admission = Admission(max_builds=1)
    assert starts(admission.offer(message(1))) == [1]
    assert admission.offer(message(2)) == []  # full: waits
    copy = message(2, name="copy")
    assert admission.offer(copy) == [Duplicate(copy.delivery)]
    run = admission.running[1].run
    assert starts(admission.ended(1, run)) == [2]
    assert starts(admission.ended(1, run)) == []  # a repeated report: nothing more starts
    assert admission.waiting() == 0


def test_a_message_for_a_running_build_is_a_duplicate_unless_a_newer_attempt() -> None:
    admission = Admission(max_builds=2)
    first = admission.offer(message(1))
    copy, retry, retry_copy = message(1, name="copy"), message(1, 2), message(1, 2, "rc")
    assert admission.offer(copy) == [Duplicate(copy.delivery)]
    assert admission.offer(retry) == []  # deferred until attempt 1's actor has ended
    assert admission.offer(retry_copy) == [Duplicate(retry_copy.delivery)]
    (start,) = first
    assert isinstance(start, Start)
    (again,) = admission.ended(1, start.run)
    assert isinstance(again, Start) and again.request == retry and again.run != start.run


def test_orphans_go_ahead_of_the_backlog_and_new_builds_in_arrival_order() -> None:
    admission = Admission(max_builds=1, takeover_headroom=0)
    (running,) = admission.offer(message(10))
    assert isinstance(running, Start)
    for build_id in (11, 12):
        assert admission.offer(message(build_id)) == []
    assert admission.orphaned([(3, 1), (4, 1)]) == []  # no room at all: they wait first
    order = []
    ended = running
    while True:
        decisions = admission.ended(ended.request.build_id, ended.run)
        if not decisions:
            break
        (ended,) = decisions
        assert isinstance(ended, Start)
        order.append((ended.request.build_id, ended.request.takeover))
    assert order == [(3, True), (4, True), (11, False), (12, False)]


def test_orphans_are_taken_over_at_once_within_the_headroom_even_when_full() -> None:
    admission = Admission(max_builds=2)  # headroom: as many again
    for build_id in (1, 2, 3):
        admission.offer(message(build_id))
    assert sorted(admission.running) == [1, 2]
    taken = admission.orphaned([(7, 1), (8, 2), (9, 1)])
    assert starts(taken) == [7, 8]
    assert all(isinstance(d, Start) and d.request.takeover for d in taken)
    assert len(admission.running) == admission.takeover_limit == 4
    # Build 3 (new work) waits behind orphan 9 even once below max_builds again.
    assert starts(admission.ended(7, admission.running[7].run)) == [9]
    for build_id in (8, 9, 1):
        admission.ended(build_id, admission.running[build_id].run)
    assert starts(admission.ended(2, admission.running[2].run)) == []
    assert sorted(admission.running) == [3]


def test_a_message_for_an_orphan_is_settled_by_its_takeover() -> None:
    admission = Admission(max_builds=1, takeover_headroom=0)
    admission.offer(message(1))
    admission.orphaned([(5, 1)])
    late = message(5, name="redelivered")
    assert admission.offer(late) == []  # rides with the takeover
    (start,) = admission.ended(1, admission.running[1].run)
    assert isinstance(start, Start)
    assert start.request == Request(5, 1, late.delivery, takeover=True)


def test_orphans_found_later_replace_the_earlier_list() -> None:
    admission = Admission(max_builds=1, takeover_headroom=0)
    admission.offer(message(1))
    admission.orphaned([(5, 1), (6, 1)])
    copy = message(6, name="for-6")
    admission.offer(copy)
    assert admission.orphaned([(5, 1)]) == []  # 6 was taken over elsewhere meanwhile
    assert list(admission.orphans) == [5]
    assert list(admission.backlog) == [6]  # its message decides by claiming, as any other


def test_stopping_gives_every_waiting_message_back() -> None:
    admission = Admission(max_builds=1)
    admission.offer(message(1))
    waiting, retry = message(2), message(1, 2)
    admission.offer(waiting)
    admission.offer(retry)
    assert admission.stop_accepting() == [GiveBack(waiting.delivery), GiveBack(retry.delivery)]
    late = message(3)
    assert admission.offer(late) == [GiveBack(late.delivery)]
    assert admission.orphaned([(9, 1)]) == []
    assert admission.ended(1, admission.running[1].run) == []


def test_bad_limits_are_refused() -> None:
    with pytest.raises(ValueError, match="max_builds must be at least 1, got 0"):
        Admission(0)
    with pytest.raises(ValueError, match="takeover_headroom must be >= 0, got -1"):
        Admission(1, -1)


BUILDS = st.integers(min_value=1, max_value=6)
ATTEMPTS = st.integers(min_value=1, max_value=3)


class AdmissionMachine(RuleBasedStateMachine):
    """The Supervisor's side of admission, with BuildActors reduced to what they do to
    admission: a started actor settles its message (after claiming) and ends once."""

    def __init__(self) -> None:
        super().__init__()
        self.max_builds, headroom = 2, 1
        self.admission = Admission(self.max_builds, headroom)
        self.deliveries: list[Delivery] = []
        self.actors: dict[int, int] = {}  # build id -> run of its live BuildActor
        self.ended_runs: list[tuple[int, int]] = []
        self.count = 0

    def carry_out(self, decisions: list[Decision]) -> None:
        for decision in decisions:
            if isinstance(decision, Start):
                request = decision.request
                assert request.build_id not in self.actors, "a second BuildActor"
                if not request.takeover:
                    assert not self.admission.orphans, "new work started ahead of orphans"
                    assert len(self.actors) < self.max_builds, "new work beyond max_builds"
                assert len(self.actors) < self.admission.takeover_limit
                self.actors[request.build_id] = decision.run
                if request.delivery is not None:
                    request.delivery.ack()  # what the BuildActor does once it has claimed
            elif isinstance(decision, Duplicate):
                decision.delivery.ack()
            elif isinstance(decision, GiveBack):
                decision.delivery.reject(requeue=True)

    @rule(build_id=BUILDS, attempt=ATTEMPTS, copies=st.integers(min_value=1, max_value=3))
    def deliver(self, build_id: int, attempt: int, copies: int) -> None:
        for _ in range(copies):
            self.count += 1
            delivery = Delivery(f"#{self.count} build {build_id} attempt {attempt}")
            self.deliveries.append(delivery)
            self.carry_out(self.admission.offer(Request(build_id, attempt, delivery)))

    @precondition(lambda self: self.actors)
    @rule(data=st.data(), twice=st.booleans())
    def end(self, data: st.DataObject, twice: bool) -> None:
        build_id = data.draw(st.sampled_from(sorted(self.actors)))
        run = self.actors.pop(build_id)
        self.ended_runs.append((build_id, run))
        self.carry_out(self.admission.ended(build_id, run))
        if twice:
            self.carry_out(self.admission.ended(build_id, run))

    @precondition(lambda self: self.ended_runs)
    @rule(data=st.data())
    def stale_report(self, data: st.DataObject) -> None:
        build_id, run = data.draw(st.sampled_from(self.ended_runs))
        assert self.admission.ended(build_id, run) == []

    @rule(found=st.lists(st.tuples(BUILDS, ATTEMPTS), max_size=4))
    def orphans_found(self, found: list[tuple[int, int]]) -> None:
        self.carry_out(self.admission.orphaned(found))

    @rule()
    def stop_accepting(self) -> None:
        self.carry_out(self.admission.stop_accepting())

    @invariant()
    def one_actor_per_build_and_every_message_accounted_for(self) -> None:
        admission = self.admission
        assert set(admission.running) == set(self.actors)
        assert {b: r.run for b, r in admission.running.items()} == self.actors
        held = [r.delivery for waiting in (admission.backlog, admission.orphans,
                                           admission.deferred)
                for r in waiting.values() if r.delivery is not None]
        assert len(held) == len(set(map(id, held)))
        for delivery in self.deliveries:
            assert bool(delivery.settled) != any(d is delivery for d in held), delivery
        for build_id in admission.backlog:
            assert build_id not in admission.running and build_id not in admission.orphans
        assert set(admission.deferred) <= set(admission.running)

    @invariant()
    def nothing_waits_that_could_start(self) -> None:
        admission = self.admission
        if admission.orphans:
            assert len(admission.running) >= admission.takeover_limit
        elif admission.backlog:
            assert len(admission.running) >= self.max_builds

    def teardown(self) -> None:
        # Every actor ends in time: then every message has been settled exactly once.
        while self.actors:
            build_id, run = next(iter(self.actors.items()))
            del self.actors[build_id]
            self.carry_out(self.admission.ended(build_id, run))
        assert all(d.settled for d in self.deliveries)


TestAdmissionMachine = AdmissionMachine.TestCase
TestAdmissionMachine.settings = settings(max_examples=300, stateful_step_count=40,
                                         deadline=None)
