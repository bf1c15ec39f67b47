"""The embedded, in-process build queue (``memory://``) used by ``conveyor run`` and tests.

It mirrors what the AMQP adapter does on RabbitMQ's quorum queue, so the engine meets the
same behaviour in both modes:

- competing consumers: each message goes to one ``consume_builds`` loop, which holds at
  most ``prefetch`` unacknowledged deliveries;
- ``reject(requeue=True)`` and a consumer loop that stops with unacked deliveries both put
  the message back at the head of the queue with ``redelivered=True``; a message returned
  more than ``delivery_limit`` times is dead-lettered, like ``x-delivery-limit``;
- ``reject(requeue=False)`` dead-letters (see :meth:`MemoryQueue.dead_letters`);
- settling a delivery whose loop has already stopped is silently ignored (the message was
  returned to the queue when the loop stopped, as when a channel dies);
- control broadcasts reach every ``consume_control`` loop running when they are sent.

Nothing survives the process.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from broker.base import BrokerError

log = logging.getLogger(__name__)

# How long a loop sleeps on its condition before looking at its ``stop`` event again:
# the bound on how late a loop notices ``stop`` (the interface gives no way to be woken).
_POLL = 0.05


@dataclass(eq=False)
class _Message:
    body: bytes
    returns: int = 0


@dataclass(eq=False)
class _Consumer:
    prefetch: int
    active: bool = True
    # Insertion-ordered, so deliveries go back in the order they were made.
    unacked: dict[MemoryDelivery, None] = field(default_factory=dict)


class MemoryDelivery:
    """One delivery from a :class:`MemoryQueue`; ``ack``/``reject`` are thread-safe."""

    def __init__(
        self, queue: MemoryQueue, consumer: _Consumer, message: _Message, redelivered: bool
    ) -> None:
        self.body = message.body
        self.redelivered = redelivered
        self._queue = queue
        self._consumer = consumer
        self._message = message
        self._settled = False

    def ack(self) -> None:
        """Acknowledge: the message is done and leaves the queue."""
        self._queue._settle(self, requeue=None)

    def reject(self, requeue: bool) -> None:
        """Give the message back (``requeue=True``) or dead-letter it."""
        self._queue._settle(self, requeue=requeue)

    def __repr__(self) -> str:
        return f"MemoryDelivery(body={self.body!r}, redelivered={self.redelivered})"


class MemoryQueue:
    """In-process :class:`broker.base.BuildQueue`. Thread-safe."""

    def __init__(self, *, delivery_limit: int = 5) -> None:
        if delivery_limit < 0:
            raise ValueError(f"MemoryQueue: delivery_limit must be >= 0, got {delivery_limit}")
        self._delivery_limit = delivery_limit
        self._cond = threading.Condition()
        self._ready: deque[_Message] = deque()
        self._dead: list[bytes] = []
        self._control_inboxes: list[deque[bytes]] = []
        self._closed = False

    # -- builds ---------------------------------------------------------------------------

    def publish_build(self, body: bytes) -> None:
        """Enqueue ``body``; immediate (there is no broker to confirm)."""
        with self._cond:
            self._check_open("publish_build")
            self._ready.append(_Message(bytes(body)))
            self._cond.notify_all()

    def consume_builds(
        self,
        on_delivery: Callable[[MemoryDelivery], None],
        prefetch: int,
        stop: threading.Event,
        *,
        ready: threading.Event | None = None,
    ) -> None:
        """Deliver messages to ``on_delivery`` on this thread until ``stop`` is set or close().

        ``ready`` (optional) is set once the loop is consuming. On return, deliveries still
        unacknowledged go back to the queue as redelivered.
        """
        if prefetch < 1:
            raise ValueError(f"consume_builds: prefetch must be >= 1, got {prefetch}")
        consumer = _Consumer(prefetch)
        if self._closed:
            return  # like the AMQP adapter: a loop on a closed queue has nothing to do
        if ready is not None:
            ready.set()
        try:
            while True:
                delivery = self._next_delivery(consumer, stop)
                if delivery is None:
                    return
                _call_handler(on_delivery, delivery)
        finally:
            self._retire(consumer)

    def _next_delivery(self, consumer: _Consumer, stop: threading.Event) -> MemoryDelivery | None:
        with self._cond:
            while True:
                if stop.is_set() or self._closed:
                    return None
                if self._ready and len(consumer.unacked) < consumer.prefetch:
                    message = self._ready.popleft()
                    delivery = MemoryDelivery(self, consumer, message, message.returns > 0)
                    consumer.unacked[delivery] = None
                    return delivery
                self._cond.wait(_POLL)

    def _retire(self, consumer: _Consumer) -> None:
        with self._cond:
            consumer.active = False
            # Returned in their original order at the head, as the broker does on channel loss.
            pending = list(consumer.unacked)
            consumer.unacked.clear()
            for delivery in reversed(pending):
                self._return(delivery._message)
            self._cond.notify_all()

    def _settle(self, delivery: MemoryDelivery, requeue: bool | None) -> None:
        with self._cond:
            if delivery._settled:
                raise RuntimeError(f"{delivery!r} was already acknowledged or rejected")
            delivery._settled = True
            consumer = delivery._consumer
            if not consumer.active:
                return  # its loop stopped: the message was already given back
            consumer.unacked.pop(delivery, None)
            if requeue is True:
                self._return(delivery._message)
            elif requeue is False:
                self._dead.append(delivery.body)
            self._cond.notify_all()

    def _return(self, message: _Message) -> None:
        message.returns += 1
        if message.returns > self._delivery_limit:
            log.warning(
                "dead-lettering a build message returned %d times (delivery limit %d)",
                message.returns,
                self._delivery_limit,
            )
            self._dead.append(message.body)
        else:
            self._ready.appendleft(message)

    def dead_letters(self) -> list[bytes]:
        """Bodies dead-lettered so far (rejected without requeue, or over the limit)."""
        with self._cond:
            return list(self._dead)

    def depth(self) -> int:
        """Messages waiting for a consumer (not counting unacknowledged deliveries)."""
        with self._cond:
            return len(self._ready)

    # -- control --------------------------------------------------------------------------

    def broadcast_control(self, body: bytes) -> None:
        """Deliver ``body`` to every running ``consume_control`` loop."""
        with self._cond:
            self._check_open("broadcast_control")
            for inbox in self._control_inboxes:
                inbox.append(bytes(body))
            self._cond.notify_all()

    def consume_control(
        self,
        on_message: Callable[[bytes], None],
        stop: threading.Event,
        *,
        ready: threading.Event | None = None,
    ) -> None:
        """Call ``on_message`` for each broadcast until ``stop`` is set or close().

        ``ready`` (optional) is set once broadcasts are being received.
        """
        inbox: deque[bytes] = deque()
        with self._cond:
            if self._closed:
                return
            self._control_inboxes.append(inbox)
        if ready is not None:
            ready.set()
        try:
            while True:
                with self._cond:
                    while not inbox and not stop.is_set() and not self._closed:
                        self._cond.wait(_POLL)
                    if stop.is_set() or self._closed:
                        return
                    body = inbox.popleft()
                try:
                    on_message(body)
                except Exception:
                    log.exception("control message handler failed; message dropped")
        finally:
            with self._cond:
                self._control_inboxes.remove(inbox)

    # -- lifecycle ------------------------------------------------------------------------

    def close(self) -> None:
        """Stop every loop; later publishes raise :class:`BrokerError`, later loops return."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def _check_open(self, operation: str) -> None:
        if self._closed:
            raise BrokerError(f"MemoryQueue.{operation}: the queue is closed")


def _call_handler(on_delivery: Callable[[MemoryDelivery], None], delivery: MemoryDelivery) -> None:
    try:
        on_delivery(delivery)
    except Exception:
        # A handler that throws must not lose the message nor kill the loop: give it back
        # (the delivery limit stops a message that always makes the handler throw).
        log.exception("build delivery handler failed; returning the message to the queue")
        if not delivery._settled:
            delivery.reject(requeue=True)
