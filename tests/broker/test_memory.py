"""The in-process queue: delivery, prefetch, redelivery, dead letters, broadcast, stopping."""

from __future__ import annotations

import queue as queue_module
import threading
from collections.abc import Iterator

import pytest

from broker.base import BrokerError, BuildQueue, Delivery
from broker.memory import MemoryQueue
from tests.broker.loops import Collector, Loop


@pytest.fixture
def queue() -> Iterator[MemoryQueue]:
    q = MemoryQueue(delivery_limit=2)
    yield q
    q.close()


def test_it_is_a_build_queue() -> None:
    q: BuildQueue = MemoryQueue()
    q.close()


def test_publish_consume_ack(queue: MemoryQueue) -> None:
    for body in (b"a", b"b", b"c"):
        queue.publish_build(body)
    assert queue.depth() == 3
    got = Collector()

    def handler(delivery: Delivery) -> None:
        delivery.ack()
        got(delivery)

    with Loop(queue.consume_builds, handler, 10) as loop:
        items = got.wait_for(3)
        assert [d.body for d in items] == [b"a", b"b", b"c"]
        assert not any(d.redelivered for d in items)
        assert queue.depth() == 0
        loop.halt()
    # Acked messages do not come back when the consumer stops.
    assert queue.depth() == 0


def test_prefetch_bounds_unacked_deliveries(queue: MemoryQueue) -> None:
    for i in range(5):
        queue.publish_build(b"m%d" % i)
    got = Collector()
    with Loop(queue.consume_builds, got, 2):
        first = got.wait_for(2)
        assert got.stays_below(3, window=0.3)
        assert queue.depth() == 3
        first[0].ack()
        assert got.wait_for(3)[2].body == b"m2"
        assert got.stays_below(4, window=0.2)
        for delivery in got.items[1:3]:
            delivery.ack()
        assert [d.body for d in got.wait_for(5)] == [b"m0", b"m1", b"m2", b"m3", b"m4"]


def test_reject_with_requeue_redelivers_at_the_head(queue: MemoryQueue) -> None:
    queue.publish_build(b"first")
    queue.publish_build(b"second")
    got = Collector()

    def handler(delivery: Delivery) -> None:
        got(delivery)
        if delivery.body == b"first" and not delivery.redelivered:
            delivery.reject(requeue=True)
        else:
            delivery.ack()

    with Loop(queue.consume_builds, handler, 1):
        items = got.wait_for(3)
    assert [(d.body, d.redelivered) for d in items] == [
        (b"first", False),
        (b"first", True),
        (b"second", False),
    ]
    assert queue.dead_letters() == []


def test_reject_without_requeue_dead_letters(queue: MemoryQueue) -> None:
    queue.publish_build(b"bad")
    got = Collector()

    def handler(delivery: Delivery) -> None:
        delivery.reject(requeue=False)
        got(delivery)

    with Loop(queue.consume_builds, handler, 1):
        got.wait_for(1)
    assert queue.dead_letters() == [b"bad"]
    assert queue.depth() == 0


def test_poison_message_is_dead_lettered_after_the_limit_while_others_flow(
    queue: MemoryQueue,
) -> None:
    queue.publish_build(b"poison")
    for i in range(3):
        queue.publish_build(b"ok%d" % i)
    got = Collector()

    def handler(delivery: Delivery) -> None:
        got(delivery)
        if delivery.body == b"poison":
            delivery.reject(requeue=True)
        else:
            delivery.ack()

    with Loop(queue.consume_builds, handler, 1):
        items = got.wait_for(6)
    bodies = [d.body for d in items]
    # delivery_limit=2: delivered once, then redelivered twice, then dead-lettered.
    assert bodies.count(b"poison") == 3
    assert sorted(b for b in bodies if b != b"poison") == [b"ok0", b"ok1", b"ok2"]
    assert queue.dead_letters() == [b"poison"]
    assert queue.depth() == 0


def test_unacked_deliveries_return_when_the_consumer_stops(queue: MemoryQueue) -> None:
    queue.publish_build(b"x")
    queue.publish_build(b"y")
    got = Collector()
    with Loop(queue.consume_builds, got, 2) as loop:
        held = got.wait_for(2)
        loop.halt()
    assert queue.depth() == 2
    # Settling after the loop stopped is ignored, as on a dead AMQP channel.
    held[0].ack()
    assert queue.depth() == 2
    again = Collector()
    with Loop(queue.consume_builds, again, 2):
        items = again.wait_for(2)
        for delivery in items:
            delivery.ack()
    assert [(d.body, d.redelivered) for d in items] == [(b"x", True), (b"y", True)]


def test_settling_twice_is_an_error(queue: MemoryQueue) -> None:
    queue.publish_build(b"x")
    got = Collector()
    with Loop(queue.consume_builds, got, 1):
        (delivery,) = got.wait_for(1)
        delivery.ack()
        with pytest.raises(RuntimeError, match="already acknowledged"):
            delivery.reject(requeue=True)


def test_acks_from_another_thread(queue: MemoryQueue) -> None:
    for i in range(20):
        queue.publish_build(b"%d" % i)
    handed: queue_module.SimpleQueue[Delivery | None] = queue_module.SimpleQueue()
    acked = Collector()

    def acker() -> None:
        while (delivery := handed.get()) is not None:
            delivery.ack()
            acked(delivery.body)

    worker = threading.Thread(target=acker, name="acker")
    worker.start()
    try:
        # prefetch 3: the loop only gets past the third message because the acker acks.
        with Loop(queue.consume_builds, handed.put, 3):
            assert sorted(int(b) for b in acked.wait_for(20)) == list(range(20))
    finally:
        handed.put(None)
        worker.join()


def test_a_failing_handler_returns_the_message(queue: MemoryQueue) -> None:
    queue.publish_build(b"boom")
    got = Collector()

    def handler(delivery: Delivery) -> None:
        got(delivery)
        if not delivery.redelivered:
            raise ValueError("handler bug")
        delivery.ack()

    with Loop(queue.consume_builds, handler, 1):
        items = got.wait_for(2)
    assert [(d.body, d.redelivered) for d in items] == [(b"boom", False), (b"boom", True)]


def test_competing_consumers_share_the_messages(queue: MemoryQueue) -> None:
    got = Collector()

    def handler(delivery: Delivery) -> None:
        delivery.ack()
        got((threading.current_thread().name, delivery.body))

    with (
        Loop(queue.consume_builds, handler, 1, name="consumer-a") as a,
        Loop(queue.consume_builds, handler, 1, name="consumer-b") as b,
    ):
        assert a.ready.wait(5) and b.ready.wait(5)
        for i in range(50):
            queue.publish_build(b"%d" % i)
        items = got.wait_for(50)
    assert sorted(int(body) for _, body in items) == list(range(50))


def test_broadcast_reaches_every_control_loop(queue: MemoryQueue) -> None:
    one, two = Collector(), Collector()
    with Loop(queue.consume_control, one) as a, Loop(queue.consume_control, two) as b:
        assert a.ready.wait(5) and b.ready.wait(5)
        queue.broadcast_control(b"cancel 7")
        queue.broadcast_control(b"cancel 8")
        assert one.wait_for(2) == [b"cancel 7", b"cancel 8"]
        assert two.wait_for(2) == [b"cancel 7", b"cancel 8"]


@pytest.mark.parametrize("kind", ["builds", "control"])
def test_loops_return_promptly_after_stop(queue: MemoryQueue, kind: str) -> None:
    if kind == "builds":
        loop = Loop(queue.consume_builds, Collector(), 1)
    else:
        loop = Loop(queue.consume_control, Collector())
    with loop:
        assert loop.ready.wait(5)
        assert loop.halt() < 0.2


def test_close_unblocks_loops_and_refuses_publishes() -> None:
    queue = MemoryQueue()
    with (
        Loop(queue.consume_builds, Collector(), 1) as builds,
        Loop(queue.consume_control, Collector()) as control,
    ):
        assert builds.ready.wait(5) and control.ready.wait(5)
        queue.close()
        assert builds.finished.wait(1) and control.finished.wait(1)
    with pytest.raises(BrokerError, match="closed"):
        queue.publish_build(b"late")
    with pytest.raises(BrokerError, match="closed"):
        queue.broadcast_control(b"late")
    # Loops started after close return at once, as on the AMQP adapter.
    queue.consume_builds(Collector(), 1, threading.Event())
    queue.consume_control(Collector(), threading.Event())


def test_bad_arguments_are_refused(queue: MemoryQueue) -> None:
    with pytest.raises(ValueError, match="prefetch must be >= 1, got 0"):
        queue.consume_builds(lambda d: None, 0, threading.Event())
    with pytest.raises(ValueError, match="delivery_limit must be >= 0"):
        MemoryQueue(delivery_limit=-1)
