"""The RabbitMQ adapter against the real broker (skips loudly when it is not running)."""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from broker.amqp import AmqpQueue
from broker.base import BrokerError, BuildQueue, Delivery
from tests.broker.loops import Collector, Loop
from tests.broker.rabbit import (
    delete_topology,
    force_close_connections,
    raw_channel,
    start_broker_app,
    stop_broker_app,
    wait_for_messages,
)
from tests.services import require_rabbitmq

pytestmark = pytest.mark.rabbitmq

MakeQueue = Callable[..., AmqpQueue]


@pytest.fixture
def amqp_url() -> str:
    return require_rabbitmq()


@pytest.fixture
def prefix() -> str:
    return f"test-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def make_queue(amqp_url: str, prefix: str) -> Iterator[MakeQueue]:
    """Adapters on a queue and exchanges unique to the test, deleted afterwards."""
    made: list[AmqpQueue] = []

    def make(**options: Any) -> AmqpQueue:
        options.setdefault("queue", f"{prefix}.builds")
        options.setdefault("prefix", prefix)
        queue = AmqpQueue(amqp_url, **options)
        made.append(queue)
        return queue

    yield make
    for queue in made:
        queue.close()
    if made:
        delete_topology(amqp_url, made[0].topology)


def acking(collector: Collector) -> Callable[[Delivery], None]:
    def handler(delivery: Delivery) -> None:
        delivery.ack()
        collector(delivery)

    return handler


def test_it_is_a_build_queue(make_queue: MakeQueue) -> None:
    queue: BuildQueue = make_queue()
    assert queue is not None


def test_publish_consume_ack(make_queue: MakeQueue) -> None:
    queue = make_queue()
    for body in (b"a", b"b", b"c"):
        queue.publish_build(body)
    assert queue.depth() == 3
    got = Collector()
    with Loop(queue.consume_builds, acking(got), 10) as loop:
        items = got.wait_for(3)
        loop.halt()
    assert [d.body for d in items] == [b"a", b"b", b"c"]
    assert not any(d.redelivered for d in items)
    # The acks were flushed before the consumer disconnected: nothing comes back.
    assert queue.depth() == 0


def test_messages_are_persistent_protobuf_on_a_quorum_queue(
    make_queue: MakeQueue, amqp_url: str
) -> None:
    queue = make_queue(delivery_limit=7)
    queue.publish_build(b"\x08\x01")
    with raw_channel(amqp_url) as channel:
        method, props, body = channel.basic_get(queue.topology.queue, auto_ack=True)
        assert method is not None and body == b"\x08\x01"
        assert props.delivery_mode == 2
        assert props.content_type == "application/x-protobuf"
        # Declaring with the same arguments succeeds; with others, the broker refuses.
        channel.queue_declare(
            queue.topology.queue, durable=True, arguments=queue.topology.queue_arguments()
        )
    assert queue.topology.queue_arguments()["x-queue-type"] == "quorum"


def test_prefetch_bounds_unacked_deliveries(make_queue: MakeQueue) -> None:
    queue = make_queue()
    for i in range(5):
        queue.publish_build(b"m%d" % i)
    got = Collector()
    with Loop(queue.consume_builds, got, 2):
        first = got.wait_for(2)
        assert got.stays_below(3, window=0.5)
        first[0].ack()  # acked from this thread, not the consumer's
        got.wait_for(3)
        assert got.stays_below(4, window=0.3)
        for delivery in got.items[1:3]:
            delivery.ack()
        items = got.wait_for(5)
        for delivery in items[3:]:
            delivery.ack()
    assert [d.body for d in items] == [b"m0", b"m1", b"m2", b"m3", b"m4"]


def test_reject_with_requeue_redelivers(make_queue: MakeQueue) -> None:
    queue = make_queue()
    queue.publish_build(b"again")
    got = Collector()

    def handler(delivery: Delivery) -> None:
        got(delivery)
        if delivery.redelivered:
            delivery.ack()
        else:
            delivery.reject(requeue=True)

    with Loop(queue.consume_builds, handler, 1):
        items = got.wait_for(2)
    assert [(d.body, d.redelivered) for d in items] == [(b"again", False), (b"again", True)]


def test_poison_message_is_dead_lettered_while_others_flow(
    make_queue: MakeQueue, amqp_url: str
) -> None:
    queue = make_queue(delivery_limit=2)
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
        assert got.stays_below(7, window=0.3)
    bodies = [d.body for d in items]
    assert bodies.count(b"poison") == 3  # first delivery + delivery_limit redeliveries
    assert sorted(b for b in bodies if b != b"poison") == [b"ok0", b"ok1", b"ok2"]
    assert wait_for_messages(amqp_url, queue.topology.dead_letter_queue, 1) == [b"poison"]
    assert queue.depth() == 0


def test_reject_without_requeue_dead_letters(make_queue: MakeQueue, amqp_url: str) -> None:
    queue = make_queue()
    queue.publish_build(b"undecodable")
    got = Collector()

    def handler(delivery: Delivery) -> None:
        delivery.reject(requeue=False)
        got(delivery)

    with Loop(queue.consume_builds, handler, 1):
        got.wait_for(1)
    assert wait_for_messages(amqp_url, queue.topology.dead_letter_queue, 1) == [b"undecodable"]


def test_broadcast_reaches_two_control_consumers(make_queue: MakeQueue) -> None:
    queue = make_queue()
    one, two = Collector(), Collector()
    with Loop(queue.consume_control, one) as a, Loop(queue.consume_control, two) as b:
        assert a.ready.wait(10) and b.ready.wait(10)
        queue.broadcast_control(b"cancel 41")
        queue.broadcast_control(b"cancel 42")
        assert one.wait_for(2) == [b"cancel 41", b"cancel 42"]
        assert two.wait_for(2) == [b"cancel 41", b"cancel 42"]


def test_broadcast_without_listeners_is_not_an_error(make_queue: MakeQueue) -> None:
    make_queue().broadcast_control(b"nobody listens")


def test_publishes_from_eight_threads_at_once(make_queue: MakeQueue) -> None:
    queue = make_queue()
    start = threading.Barrier(8)
    errors: list[BaseException] = []

    def publish(worker: int) -> None:
        start.wait()
        try:
            for i in range(25):
                queue.publish_build(f"{worker}:{i}".encode())
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=publish, args=(w,), name=f"pub-{w}") for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    got = Collector()
    with Loop(queue.consume_builds, acking(got), 50):
        items = got.wait_for(200)
    expected = Counter(f"{w}:{i}".encode() for w in range(8) for i in range(25))
    assert Counter(d.body for d in items) == expected


@pytest.mark.parametrize("kind", ["builds", "control"])
def test_loops_return_within_a_second_of_stop(make_queue: MakeQueue, kind: str) -> None:
    queue = make_queue()
    if kind == "builds":
        loop = Loop(queue.consume_builds, Collector(), 1)
    else:
        loop = Loop(queue.consume_control, Collector())
    with loop:
        assert loop.ready.wait(10)
        assert loop.halt() < 1.2


def test_consumer_and_publisher_reconnect_after_a_forced_close(
    make_queue: MakeQueue, prefix: str
) -> None:
    queue = make_queue()
    got = Collector()
    with Loop(queue.consume_builds, acking(got), 1) as loop:
        assert loop.ready.wait(10)
        queue.publish_build(b"before")
        got.wait_for(1)
        loop.ready.clear()
        assert force_close_connections(f"{prefix}-") == 2  # the consumer and the publisher
        assert loop.ready.wait(15), "the consumer did not reconnect"
        queue.publish_build(b"after")
        items = got.wait_for(2)
    assert [d.body for d in items] == [b"before", b"after"]


def test_ack_on_a_dead_channel_is_dropped_and_the_message_redelivered(
    make_queue: MakeQueue, prefix: str
) -> None:
    queue = make_queue()
    queue.publish_build(b"held")
    got = Collector()
    with Loop(queue.consume_builds, got, 1) as loop:
        (held,) = got.wait_for(1)
        loop.ready.clear()
        force_close_connections(f"{prefix}-builds")
        assert loop.ready.wait(15)
        held.ack()  # its channel is gone: silently dropped
        items = got.wait_for(2)
        items[1].ack()
    assert (items[1].body, items[1].redelivered) == (b"held", True)


def test_consumer_survives_its_queue_being_deleted(make_queue: MakeQueue, amqp_url: str) -> None:
    queue = make_queue()
    got = Collector()
    with Loop(queue.consume_builds, acking(got), 1) as loop:
        assert loop.ready.wait(10)
        queue.publish_build(b"first")
        got.wait_for(1)
        loop.ready.clear()
        with raw_channel(amqp_url) as channel:
            channel.queue_delete(queue.topology.queue)
        # The broker cancels the consumer; it declares the queue again and resumes.
        assert loop.ready.wait(15)
        queue.publish_build(b"second")
        items = got.wait_for(2)
    assert [d.body for d in items] == [b"first", b"second"]


def test_publisher_declares_a_deleted_queue_again(make_queue: MakeQueue, amqp_url: str) -> None:
    queue = make_queue()
    queue.publish_build(b"one")
    with raw_channel(amqp_url) as channel:
        channel.queue_delete(queue.topology.queue)
    # mandatory=True makes the broker return it as unroutable; the publisher re-declares.
    queue.publish_build(b"two")
    assert queue.depth() == 1
    assert wait_for_messages(amqp_url, queue.topology.queue, 1) == [b"two"]


def test_close_refuses_publishes_and_ends_loops(make_queue: MakeQueue) -> None:
    queue = make_queue()
    with Loop(queue.consume_builds, Collector(), 1) as builds:
        assert builds.ready.wait(10)
        queue.close()
        assert builds.finished.wait(2)
    with pytest.raises(BrokerError, match="closed"):
        queue.publish_build(b"late")
    queue.consume_control(Collector(), threading.Event())  # returns at once


def test_conflicting_declaration_is_a_clear_error(make_queue: MakeQueue) -> None:
    make_queue(delivery_limit=5).publish_build(b"x")
    other = make_queue(delivery_limit=3)
    with pytest.raises(BrokerError, match="other arguments"):
        other.publish_build(b"y")
    with pytest.raises(BrokerError, match="other arguments"):
        other.consume_builds(lambda d: None, 1, threading.Event())


def test_bad_credentials_fail_without_retrying_forever(prefix: str, amqp_url: str) -> None:
    require_rabbitmq()
    bad = amqp_url.replace("guest:guest@", "guest:wrong-password@")
    queue = AmqpQueue(bad, queue=f"{prefix}.builds", prefix=prefix)
    try:
        with pytest.raises(BrokerError) as caught:
            queue.publish_build(b"x")
        assert "wrong-password" not in str(caught.value)
        with pytest.raises(BrokerError):
            queue.consume_builds(lambda d: None, 1, threading.Event())
    finally:
        queue.close()


def test_unreachable_broker_gives_bounded_errors(prefix: str) -> None:
    queue = AmqpQueue(
        "amqp://guest:guest@127.0.0.1:1/%2F", queue=f"{prefix}.builds", publish_timeout=5.0
    )
    try:
        began = time.monotonic()
        with pytest.raises(BrokerError, match="did not"):
            queue.publish_build(b"x")
        assert time.monotonic() - began < 6.5
        assert queue.depth() == -1
    finally:
        queue.close()


@pytest.mark.slow
def test_broker_restart(make_queue: MakeQueue) -> None:
    queue = make_queue()
    got = Collector()
    with Loop(queue.consume_builds, acking(got), 1) as loop:
        assert loop.ready.wait(10)
        queue.publish_build(b"before restart")
        got.wait_for(1)
        loop.ready.clear()
        stop_broker_app()
        try:
            with pytest.raises(BrokerError):
                queue.publish_build(b"while down")
        finally:
            start_broker_app()
        assert loop.ready.wait(60), "the consumer did not reconnect after the restart"
        queue.publish_build(b"after restart")
        items = got.wait_for(2, timeout=30)
    assert [d.body for d in items] == [b"before restart", b"after restart"]
