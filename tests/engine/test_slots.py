"""The job cap (actors.slots): FIFO, with the jobs of taken-over builds first."""

from __future__ import annotations

from typing import Any

from actors.messages import SlotGranted
from actors.slots import JobSlots


class Inbox:
    """Stands in for a BuildActor's ref: records the grants it is told."""

    def __init__(self) -> None:
        self.told: list[str] = []

    def tell(self, message: Any) -> None:
        assert isinstance(message, SlotGranted)
        self.told.append(message.key)

    def is_alive(self) -> bool:
        return True


def test_jobs_of_taken_over_builds_wait_ahead_of_the_others_in_order() -> None:
    slots = JobSlots(1)
    inbox = Inbox()
    ref: Any = inbox
    assert slots.request(ref, "b1", "running")
    assert not slots.request(ref, "b1", "new-1")
    assert not slots.request(ref, "b2", "taken-1", urgent=True)
    assert not slots.request(ref, "b1", "new-2")
    assert not slots.request(ref, "b3", "taken-2", urgent=True)
    assert not slots.request(ref, "b3", "gone", urgent=True)
    slots.release("b3", "gone")  # withdrawn while waiting: the order of the rest holds
    assert slots.waiting == 4
    owners = {"new-1": "b1", "taken-1": "b2", "new-2": "b1", "taken-2": "b3"}
    holder = ("b1", "running")
    for _ in range(4):  # each job ends in turn, and its slot goes to the next waiter
        slots.release(*holder)
        holder = (owners[inbox.told[-1]], inbox.told[-1])
    assert inbox.told == ["taken-1", "taken-2", "new-1", "new-2"]
    assert slots.in_use == 1 and slots.waiting == 0


def test_an_urgent_job_takes_a_free_slot_at_once() -> None:
    slots = JobSlots(2)
    ref: Any = Inbox()
    assert slots.request(ref, "b1", "a")
    assert slots.request(ref, "b2", "taken", urgent=True)
    assert not slots.request(ref, "b1", "c", urgent=True)
    slots.release_owner("b1")  # its build ended: "c" withdrawn, "a" freed
    assert slots.in_use == 1 and slots.waiting == 0
