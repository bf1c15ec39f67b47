"""Pieces the AMQP adapter's publisher and consumers share: connection parameters, the
topology, error classification, reconnect backoff and the delivery handle."""

from __future__ import annotations

import logging
import threading
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pika
import pika.exceptions as pex
import tenacity
from pika.adapters.blocking_connection import BlockingChannel, BlockingConnection

from broker.base import BrokerError

log = logging.getLogger("broker.amqp")

CONTENT_TYPE = "application/x-protobuf"
PERSISTENT = pika.BasicProperties(delivery_mode=2, content_type=CONTENT_TYPE)
TRANSIENT = pika.BasicProperties(delivery_mode=1, content_type=CONTENT_TYPE)

# How long blocking loops wait for I/O before looking at their stop flags again.
PUMP_INTERVAL = 0.5


def redact(url: str) -> str:
    """``url`` without its password, for logs and errors."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


def connection_parameters(url: str, *, heartbeat: int, name: str) -> pika.URLParameters:
    """Parse ``url``; ``heartbeat`` applies unless the URL sets its own."""
    try:
        params = pika.URLParameters(url)
    except Exception as exc:
        raise ValueError(f"invalid AMQP URL {redact(url)!r}: {exc}") from exc
    if "heartbeat" not in urllib.parse.parse_qs(urllib.parse.urlsplit(url).query):
        params.heartbeat = heartbeat
    # Named connections show up in the broker's tools and let tests find their own.
    params.client_properties = {"connection_name": name}
    # A broker in a resource alarm blocks publishers silently; turn that into an error.
    params.blocked_connection_timeout = 30.0
    return params


@dataclass(frozen=True)
class Topology:
    """Names and arguments of everything the adapter declares on the broker."""

    queue: str
    prefix: str
    delivery_limit: int

    @property
    def dead_letter_exchange(self) -> str:
        return f"{self.prefix}.dead-letter"

    @property
    def dead_letter_queue(self) -> str:
        return f"{self.queue}.dead"

    @property
    def control_exchange(self) -> str:
        return f"{self.prefix}.control"

    def queue_arguments(self) -> dict[str, Any]:
        return {
            "x-queue-type": "quorum",
            "x-delivery-limit": self.delivery_limit,
            "x-dead-letter-exchange": self.dead_letter_exchange,
            "x-dead-letter-routing-key": self.queue,
        }

    def declare_builds(self, channel: BlockingChannel) -> None:
        """Declare the build queue and its dead-letter route (idempotent)."""
        channel.exchange_declare(self.dead_letter_exchange, "direct", durable=True)
        channel.queue_declare(self.dead_letter_queue, durable=True)
        channel.queue_bind(
            self.dead_letter_queue, self.dead_letter_exchange, routing_key=self.queue
        )
        channel.queue_declare(self.queue, durable=True, arguments=self.queue_arguments())

    def declare_control(self, channel: BlockingChannel) -> None:
        channel.exchange_declare(self.control_exchange, "fanout", durable=True)


def is_fatal(exc: BaseException) -> bool:
    """Errors that retrying cannot cure: credentials, permissions, conflicting declarations."""
    if isinstance(
        exc,
        pex.AuthenticationError
        | pex.ProbableAuthenticationError
        | pex.ProbableAccessDeniedError
        | pex.IncompatibleProtocolError,
    ):
        return True
    return isinstance(exc, pex.ChannelClosedByBroker) and exc.reply_code in (403, 406)


def is_transient(exc: BaseException) -> bool:
    return isinstance(exc, pex.AMQPError | OSError) and not is_fatal(exc)


def fatal_error(exc: BaseException, url: str, topology: Topology) -> BrokerError:
    if isinstance(exc, pex.ChannelClosedByBroker) and exc.reply_code == 406:
        return BrokerError(
            f"RabbitMQ refused to declare queue {topology.queue!r} or its exchanges at "
            f"{redact(url)}: {exc.reply_text} — an existing declaration has other arguments "
            f"(this adapter wants {topology.queue_arguments()}); delete it or use another name"
        )
    return BrokerError(f"RabbitMQ at {redact(url)} refused the connection: {exc!r}")


class Stopping(Exception):
    """Raised inside retry loops when the caller asked to stop."""


def interruptible_sleep(
    should_stop: Callable[[], bool], wake: threading.Event
) -> Callable[[float], None]:
    """A tenacity ``sleep`` that wakes early when ``wake`` is set or ``should_stop()``."""

    def sleep(seconds: float) -> None:
        remaining = seconds
        while remaining > 0 and not should_stop():
            step = min(remaining, PUMP_INTERVAL)
            if wake.wait(step):
                return
            remaining -= step

    return sleep


def open_with_backoff(
    params: pika.URLParameters,
    setup: Callable[[BlockingConnection], BlockingChannel],
    *,
    should_stop: Callable[[], bool],
    wake: threading.Event,
    what: str,
    on_failure: Callable[[BaseException], None] | None = None,
) -> tuple[BlockingConnection, BlockingChannel]:
    """Connect and run ``setup``, retrying transient failures with capped exponential backoff.

    Raises :class:`Stopping` once ``should_stop()`` turns true, and the fatal error itself
    (see :func:`is_fatal`) without retrying.
    """

    def attempt() -> tuple[BlockingConnection, BlockingChannel]:
        if should_stop():
            raise Stopping
        connection = BlockingConnection(params)
        try:
            return connection, setup(connection)
        except BaseException:
            close_quietly(connection)
            raise

    def before_sleep(state: tenacity.RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        log.warning(
            "%s: cannot reach RabbitMQ (attempt %d: %r); retrying in %.1fs",
            what,
            state.attempt_number,
            exc,
            state.upcoming_sleep,
        )
        if on_failure is not None and exc is not None:
            on_failure(exc)

    retrying = tenacity.Retrying(
        retry=tenacity.retry_if_exception(is_transient),
        # Jitter spreads the reconnects of many replicas after a broker restart.
        wait=tenacity.wait_exponential(multiplier=0.1, max=5.0) + tenacity.wait_random(0, 0.2),
        stop=lambda _state: should_stop(),
        sleep=interruptible_sleep(should_stop, wake),
        before_sleep=before_sleep,
        reraise=True,
    )
    try:
        return retrying(attempt)
    except pex.AMQPError as exc:
        if should_stop() and not is_fatal(exc):
            raise Stopping from exc
        raise
    except OSError as exc:
        if should_stop():
            raise Stopping from exc
        raise


def close_quietly(connection: BlockingConnection | None) -> None:
    if connection is None:
        return
    try:
        if connection.is_open:
            connection.close()
    except Exception as exc:  # the connection is going away either way
        log.debug("closing an AMQP connection failed: %r", exc)


class AmqpDelivery:
    """One build message; ``ack``/``reject`` may be called from any thread.

    The settlement runs on the consuming thread (``add_callback_threadsafe``) on the channel
    that delivered the message. When that channel or connection is gone, it is dropped: the
    broker has already put the message back and will redeliver it.
    """

    def __init__(
        self,
        connection: BlockingConnection,
        channel: BlockingChannel,
        delivery_tag: int,
        body: bytes,
        redelivered: bool,
    ) -> None:
        self.body = body
        self.redelivered = redelivered
        self._connection = connection
        self._channel = channel
        self._tag = delivery_tag
        self._lock = threading.Lock()
        self._settled = False

    def ack(self) -> None:
        """Acknowledge: the message leaves the queue."""
        self._settle("ack", lambda: self._channel.basic_ack(self._tag))

    def reject(self, requeue: bool) -> None:
        """Give the message back (``requeue=True``) or dead-letter it."""
        self._settle("reject", lambda: self._channel.basic_reject(self._tag, requeue=requeue))

    def _settle(self, what: str, action: Callable[[], None]) -> None:
        with self._lock:
            if self._settled:
                # A second ack of one tag would make the broker close the whole channel
                # and redeliver every message in flight on it.
                raise RuntimeError(f"{self!r} was already acknowledged or rejected")
            self._settled = True

        def run() -> None:
            if not self._channel.is_open:
                log.debug("%s of delivery %d dropped: its channel is closed", what, self._tag)
                return
            try:
                action()
            except pex.AMQPError as exc:
                log.debug("%s of delivery %d dropped: %r", what, self._tag, exc)

        try:
            self._connection.add_callback_threadsafe(run)
        except pex.AMQPError as exc:
            log.debug("%s of delivery %d dropped: %r", what, self._tag, exc)

    @property
    def settled(self) -> bool:
        return self._settled

    def __repr__(self) -> str:
        return (
            f"AmqpDelivery(tag={self._tag}, redelivered={self.redelivered}, {len(self.body)} bytes)"
        )
