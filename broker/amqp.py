"""The RabbitMQ build queue (``amqp://`` / ``amqps://``), through pika.

Topology (declared idempotently by whoever connects first):

- ``<queue>`` — durable **quorum** queue of ``BuildJob`` messages, ``x-delivery-limit``
  = ``delivery_limit``: a message returned (rejected with requeue, or in flight on a
  channel that died) more than that many times is dead-lettered instead of looping;
- ``<prefix>.dead-letter`` (direct exchange) → ``<queue>.dead`` (durable queue): poison
  messages, rejected without requeue or over the delivery limit, wait there for a person;
- ``<prefix>.control`` (fanout exchange): control broadcasts (cancellations); each
  ``consume_control`` loop gets its own exclusive, auto-delete queue bound to it.
  Broadcasts sent while a loop is disconnected are lost: the database stays the source of
  truth for cancellation, the broadcast only makes it prompt.

Messages are persistent protobuf (``delivery_mode=2``, ``application/x-protobuf``).
Publishing waits for the broker's confirm (``mandatory=True``: a message no queue takes is
an error). Publishes run on a publisher thread that owns its connection (see
``broker.amqp_publisher``; ``publishers`` of them share the load), so any number of
threads may publish at once. Consumers own a connection each, on the thread that runs the
loop; deliveries are acknowledged from any thread through ``add_callback_threadsafe`` on
the channel that delivered them.

Every loop reconnects by itself with capped exponential backoff when the broker goes away,
and returns within about a second of its ``stop`` event being set. Errors that retrying
cannot cure (bad credentials, a queue already declared with other arguments) raise
:class:`BrokerError` instead of retrying forever.

RabbitMQ closes a channel whose delivery stays unacknowledged longer than its
``consumer_timeout`` (30 minutes by default), which would redeliver every message in
flight on it. Builds run longer than that, so the engine acknowledges a ``BuildJob`` as
soon as it has **claimed the build in the database**; from then on the database lease,
not the message, keeps the build owned. Do not hold a build's message
unacknowledged for the build's duration.
"""

from __future__ import annotations

import itertools
import threading
import urllib.parse
from collections.abc import Callable
from typing import Any

import pika.exceptions as pex
from pika.adapters.blocking_connection import BlockingChannel, BlockingConnection

from broker.amqp_publisher import Publisher
from broker.amqp_support import (
    PERSISTENT,
    PUMP_INTERVAL,
    TRANSIENT,
    AmqpDelivery,
    Stopping,
    Topology,
    close_quietly,
    connection_parameters,
    fatal_error,
    log,
    open_with_backoff,
)
from broker.base import QUEUE_NAME, QUEUE_PREFIX, BrokerError, Delivery

_SCHEMES = ("amqp", "amqps")


class AmqpQueue:
    """:class:`broker.base.BuildQueue` on RabbitMQ. Thread-safe; see the module docstring."""

    def __init__(
        self,
        url: str,
        *,
        queue: str = QUEUE_NAME,
        prefix: str = QUEUE_PREFIX,
        delivery_limit: int = 5,
        heartbeat: int = 30,
        publish_timeout: float = 10.0,
        publish_attempts: int = 3,
        publishers: int = 1,
    ) -> None:
        scheme = urllib.parse.urlsplit(url).scheme
        if scheme not in _SCHEMES:
            raise ValueError(f"AmqpQueue: URL scheme must be amqp or amqps, got {scheme!r}")
        for name, value in (("queue", queue), ("prefix", prefix)):
            if not value or len(value) > 200:
                raise ValueError(f"AmqpQueue: {name} must be 1-200 characters, got {value!r}")
        if delivery_limit < 0:
            raise ValueError(f"AmqpQueue: delivery_limit must be >= 0, got {delivery_limit}")
        if heartbeat < 0:
            raise ValueError(f"AmqpQueue: heartbeat must be >= 0 seconds, got {heartbeat}")
        if publish_timeout <= 0 or publish_attempts < 1 or publishers < 1:
            raise ValueError(
                "AmqpQueue: publish_timeout must be > 0, publish_attempts and publishers >= 1"
            )
        self._url = url
        self._heartbeat = heartbeat
        self._topology = Topology(queue=queue, prefix=prefix, delivery_limit=delivery_limit)
        self._publish_timeout = publish_timeout
        self._closed = threading.Event()
        # Each publisher waits for one confirm at a time; several (each one thread and one
        # connection, started on first use) let concurrent publishes overlap.
        self._publishers = [
            Publisher(
                self._params("publisher"),
                self._declare_for_publishing,
                describe_fatal=lambda exc: fatal_error(exc, url, self._topology),
                max_attempts=publish_attempts,
                thread_name=f"conveyor-amqp-publisher-{i}[{prefix}]",
            )
            for i in range(publishers)
        ]
        self._turn = itertools.count()

    @property
    def topology(self) -> Topology:
        """Names of the queues and exchanges this adapter uses."""
        return self._topology

    def _params(self, role: str) -> Any:
        return connection_parameters(
            self._url, heartbeat=self._heartbeat, name=f"{self._topology.prefix}-{role}"
        )

    def _publisher(self) -> Publisher:
        return self._publishers[next(self._turn) % len(self._publishers)]

    def _declare_for_publishing(self, channel: BlockingChannel) -> None:
        self._topology.declare_builds(channel)
        self._topology.declare_control(channel)

    # -- publishing -----------------------------------------------------------------------

    def publish_build(self, body: bytes) -> None:
        """Publish a persistent build message; returns once RabbitMQ confirmed it.

        Raises :class:`BrokerError` when it could not (the caller's outbox re-publishes).
        """
        queue = self._topology.queue

        def publish(channel: BlockingChannel) -> None:
            channel.basic_publish("", queue, body, PERSISTENT, mandatory=True)

        self._publisher().call(publish, timeout=self._publish_timeout)

    def broadcast_control(self, body: bytes) -> None:
        """Send ``body`` to every ``consume_control`` loop connected now (confirmed)."""
        exchange = self._topology.control_exchange

        def publish(channel: BlockingChannel) -> None:
            # Not mandatory: with no executor listening there is nobody to tell.
            channel.basic_publish(exchange, "", body, TRANSIENT, mandatory=False)

        self._publisher().call(publish, timeout=self._publish_timeout)

    def depth(self) -> int:
        """Messages ready in the build queue; -1 when the broker cannot say."""
        queue = self._topology.queue

        def count(channel: BlockingChannel) -> int:
            return int(channel.queue_declare(queue, passive=True).method.message_count)

        try:
            return self._publisher().call(count, timeout=min(5.0, self._publish_timeout))
        except BrokerError as exc:
            log.warning("depth of %s unknown: %s", queue, exc)
            return -1

    # -- consuming ------------------------------------------------------------------------

    def consume_builds(
        self,
        on_delivery: Callable[[Delivery], None],
        prefetch: int,
        stop: threading.Event,
        *,
        ready: threading.Event | None = None,
    ) -> None:
        """Deliver build messages to ``on_delivery`` on this thread until ``stop`` is set.

        At most ``prefetch`` deliveries are unacknowledged at a time. ``ready`` (optional)
        is set each time the loop starts consuming, also after a reconnection.
        """
        if prefetch < 1:
            raise ValueError(f"consume_builds: prefetch must be >= 1, got {prefetch}")
        topology = self._topology

        def setup(connection: BlockingConnection) -> BlockingChannel:
            channel = connection.channel()
            topology.declare_builds(channel)
            channel.basic_qos(prefetch_count=prefetch)

            def on_message(ch: BlockingChannel, method: Any, _props: Any, body: bytes) -> None:
                if self._stopping(stop):
                    return  # left unacked: the broker requeues it when we disconnect
                delivery = AmqpDelivery(
                    connection, ch, method.delivery_tag, body, method.redelivered
                )
                _hand_over(on_delivery, delivery)

            channel.basic_consume(topology.queue, on_message, auto_ack=False)
            return channel

        self._consume("build consumer", "builds", setup, stop, ready)

    def consume_control(
        self,
        on_message: Callable[[bytes], None],
        stop: threading.Event,
        *,
        ready: threading.Event | None = None,
    ) -> None:
        """Call ``on_message`` for each broadcast until ``stop`` is set.

        ``ready`` (optional) is set each time the loop's queue is bound and consuming.
        """
        topology = self._topology

        def setup(connection: BlockingConnection) -> BlockingChannel:
            channel = connection.channel()
            topology.declare_control(channel)
            own = channel.queue_declare("", exclusive=True, auto_delete=True).method.queue
            channel.queue_bind(own, topology.control_exchange)

            def deliver(_ch: BlockingChannel, _method: Any, _props: Any, body: bytes) -> None:
                if self._stopping(stop):
                    return
                try:
                    on_message(body)
                except Exception:
                    log.exception("control message handler failed; message dropped")

            channel.basic_consume(own, deliver, auto_ack=True)
            return channel

        self._consume("control consumer", "control", setup, stop, ready)

    def _consume(
        self,
        what: str,
        role: str,
        setup: Callable[[BlockingConnection], BlockingChannel],
        stop: threading.Event,
        ready: threading.Event | None,
    ) -> None:
        params = self._params(role)

        def stopping() -> bool:
            return self._stopping(stop)

        while not stopping():
            try:
                connection, channel = open_with_backoff(
                    params, setup, should_stop=stopping, wake=stop, what=what
                )
            except Stopping:
                return
            except Exception as exc:
                raise fatal_error(exc, self._url, self._topology) from exc
            cancelled = threading.Event()
            channel.add_on_cancel_callback(_setter(cancelled))
            if ready is not None:
                ready.set()
            try:
                if self._pump(what, connection, channel, cancelled, stopping):
                    return
            finally:
                close_quietly(connection)

    def _pump(
        self,
        what: str,
        connection: BlockingConnection,
        channel: BlockingChannel,
        cancelled: threading.Event,
        stopping: Callable[[], bool],
    ) -> bool:
        """Service the connection until asked to stop (True) or it is lost (False)."""
        try:
            while not stopping():
                connection.process_data_events(time_limit=PUMP_INTERVAL)
                if cancelled.is_set():
                    log.warning("%s: the broker cancelled the consumer; reconnecting", what)
                    return False
                if not channel.is_open:
                    log.warning("%s: the broker closed the channel; reconnecting", what)
                    return False
            # Settle what handlers acknowledged just before the stop, then disconnect:
            # deliveries still unacknowledged go back to the queue.
            connection.process_data_events(time_limit=0)
            return True
        except (pex.AMQPError, OSError) as exc:
            # Anything the broker does to an established consumer (including closing its
            # channel with 406 on a consumer timeout) is cured by reconnecting.
            log.warning("%s: connection lost (%r); reconnecting", what, exc)
            return False

    def _stopping(self, stop: threading.Event) -> bool:
        return stop.is_set() or self._closed.is_set()

    # -- lifecycle ------------------------------------------------------------------------

    def close(self) -> None:
        """Stop the publishers and make every consume loop return (within about a second)."""
        self._closed.set()
        for publisher in self._publishers:
            publisher.close()


def _setter(event: threading.Event) -> Callable[[Any], None]:
    return lambda _frame: event.set()


def _hand_over(on_delivery: Callable[[Delivery], None], delivery: AmqpDelivery) -> None:
    try:
        on_delivery(delivery)
    except Exception:
        # Give the message back rather than lose it; the delivery limit stops a message
        # that always makes the handler throw.
        log.exception("build delivery handler failed; returning the message to the queue")
        if not delivery.settled:
            delivery.reject(requeue=True)


__all__ = ["AmqpDelivery", "AmqpQueue", "BrokerError"]
