"""The queue adapter interface the QueueActor and the pipeline service use.

Two adapters implement it: ``broker.memory`` (embedded, in-process) and ``broker.amqp``
(RabbitMQ through pika). Bodies are serialized protobuf messages (``BuildJob``,
``Control``); the adapter never looks inside them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Protocol

# The AMQP queue, and the prefix of the exchanges (CONVEYOR_QUEUE_NAME, _PREFIX).
QUEUE_NAME = "conveyor.builds"
QUEUE_PREFIX = "conveyor"


class BrokerError(Exception):
    """The broker could not take or give a message (after the adapter's own retries)."""


class Delivery(Protocol):
    """One received message. ``ack``/``reject`` may be called from any thread."""

    body: bytes
    redelivered: bool

    def ack(self) -> None: ...

    def reject(self, requeue: bool) -> None:
        """Give the message back (requeue) or dead-letter it (requeue=False)."""
        ...


class BuildQueue(Protocol):
    def publish_build(self, body: bytes) -> None:
        """Publish durably; returns once the broker confirmed it (or raises BrokerError)."""
        ...

    def consume_builds(
        self, on_delivery: Callable[[Delivery], None], prefetch: int, stop: threading.Event
    ) -> None:
        """Blocking loop run on a thread the caller owns, until ``stop`` is set.

        Calls ``on_delivery`` on that thread for each message; keep it short (hand off).
        Reconnects by itself on connection loss.
        """
        ...

    def broadcast_control(self, body: bytes) -> None:
        """Send to every executor (cancellations)."""
        ...

    def consume_control(self, on_message: Callable[[bytes], None], stop: threading.Event) -> None:
        """Blocking loop receiving broadcasts, until ``stop`` is set."""
        ...

    def depth(self) -> int:
        """Messages waiting in the build queue (for the console); -1 when unknown."""
        ...

    def close(self) -> None: ...
