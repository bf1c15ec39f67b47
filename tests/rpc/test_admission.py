"""Admission by lanes and the receive-deadline watchdog, as plain objects."""

from __future__ import annotations

import threading

import pytest

from rpc.admission import Admission, Lane, Limits, Owner
from rpc.errors import ResourceExhausted
from rpc.receive_deadline import Watchdog

LIMITS = Limits(calls=3, calls_per_user=2, streams=2, streams_per_user=1, admin_calls=1)


def test_users_are_bounded_per_user_and_in_all() -> None:
    gate = Admission(LIMITS)
    a1 = gate.admit([(Lane.CALLS, "a")])
    gate.admit([(Lane.CALLS, "a")])
    with pytest.raises(ResourceExhausted, match=r"user 'a' already has 2 calls in progress, "
                                                r"the limit is 2$"):
        gate.admit([(Lane.CALLS, "a")])
    gate.admit([(Lane.CALLS, "b")])
    with pytest.raises(ResourceExhausted, match="the server has 3 calls in progress, its "
                                                "limit is 3: try again shortly"):
        gate.admit([(Lane.CALLS, "c")])
    a1.release()
    a1.release()  # idempotent: gives back one slot only
    gate.admit([(Lane.CALLS, "c")])
    assert gate.in_use()[Lane.CALLS] == (3, 3)
    assert gate.saturation() == "calls: 3 of 3 in use"


def test_admins_overflow_into_the_users_lane_without_a_per_user_bound() -> None:
    gate = Admission(LIMITS)
    for user in ("a", "b", "c"):
        gate.admit([(Lane.CALLS, user)])
    route = [(Lane.ADMIN_CALLS, None), (Lane.CALLS, None)]
    first = gate.admit(route)
    assert first.lane is Lane.ADMIN_CALLS
    with pytest.raises(ResourceExhausted, match="the server has 1 admin calls in progress"):
        gate.admit(route)  # both full: the first lane's reason
    assert gate.saturation() == "calls: 3 of 3 in use"


def test_streams_are_their_own_lane() -> None:
    gate = Admission(LIMITS)
    for user in ("a", "b", "c"):
        gate.admit([(Lane.CALLS, user)])
    gate.admit([(Lane.STREAMS, "a")])
    with pytest.raises(ResourceExhausted, match=r"close one \(or stop following\) first"):
        gate.admit([(Lane.STREAMS, "a")])
    gate.admit([(Lane.STREAMS, "b")])
    assert gate.saturation() == "calls: 3 of 3 in use; streams: 2 of 2 in use"


def test_cancel_ends_the_calls_of_a_user_or_of_tokens_but_the_one_asking() -> None:
    gate = Admission(LIMITS)
    ended: list[str] = []
    alice = gate.admit([(Lane.CALLS, "alice")], Owner(user_id=1, token_id=10))
    asking = gate.admit([(Lane.CALLS, "alice")], Owner(user_id=1, token_id=11))
    bob = gate.admit([(Lane.STREAMS, "bob")], Owner(user_id=2, token_id=20))
    alice.on_cancel(lambda: ended.append("alice"))
    asking.on_cancel(lambda: ended.append("asking"))
    bob.on_cancel(lambda: ended.append("bob"))
    assert gate.cancel(token_ids={10, 11}, spare=asking) == 1
    assert gate.cancel(user_id=2) == 1
    assert ended == ["alice", "bob"]
    # A call admitted but not running yet ends as soon as it says how.
    late = gate.admit([(Lane.CALLS, "carol")], Owner(user_id=3, token_id=30))
    assert gate.cancel(user_id=3) == 1
    late.on_cancel(lambda: ended.append("late"))
    assert ended[-1] == "late"


def test_limits_must_be_positive() -> None:
    with pytest.raises(ValueError, match=r"Limits\.calls must be positive"):
        Limits(calls=0)


def test_the_watchdog_fires_overdue_alarms_only() -> None:
    dog = Watchdog(name="grpc-test-watchdog")
    fired = threading.Event()
    kept = dog.arm(60.0, lambda: pytest.fail("a disarmed alarm fired"))
    due = dog.arm(0.01, fired.set)
    try:
        assert fired.wait(10)
        assert not dog.disarm(due)  # too late: it fired
        assert dog.disarm(kept)
        assert dog.pending() == 0
    finally:
        dog.close()
    assert not dog.arm(0.01, fired.set).live  # closed: nothing is armed any more
