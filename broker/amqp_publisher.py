"""The AMQP adapter's publisher: one thread owns one connection; any thread may publish.

pika's ``BlockingConnection`` is not thread-safe and its heartbeats are only answered while
its owner calls into it. So callers never touch the connection: they queue an operation
and wait on a future, and they wake the owner thread with ``add_callback_threadsafe`` (the
one thread-safe call). Between operations the owner sits in
``process_data_events(time_limit=...)``, which services heartbeats and returns as soon as
a wake-up arrives.

The connection is opened on the first operation and re-opened, with backoff, after it is
lost. An operation that fails (connection lost mid-publish, nack, unroutable, channel
closed) is retried up to ``max_attempts`` times in all, then fails with
:class:`BrokerError`. A retried publish may reach the queue twice (its first confirm was
lost with the connection): consumers are idempotent.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pika
import pika.exceptions as pex
from pika.adapters.blocking_connection import BlockingChannel, BlockingConnection

from broker.amqp_support import (
    Stopping,
    close_quietly,
    is_fatal,
    is_transient,
    open_with_backoff,
)
from broker.base import BrokerError

T = TypeVar("T")

# How long the owner thread sleeps in pika when idle: short enough for heartbeats of a few
# seconds, long enough to cost nothing.
_IDLE_PUMP = 1.0

_log = logging.getLogger("broker.amqp.publisher")


@dataclass(eq=False)
class _Operation:
    run: Callable[[BlockingChannel], Any]
    future: Future[Any]
    deadline: float
    attempts: int = 0
    errors: list[str] = field(default_factory=list)
    abandoned: bool = False


_SHUTDOWN = object()


class Publisher:
    """Runs channel operations on a dedicated connection thread; thread-safe."""

    def __init__(
        self,
        params: pika.URLParameters,
        setup: Callable[[BlockingChannel], None],
        *,
        describe_fatal: Callable[[BaseException], BrokerError],
        max_attempts: int = 3,
        thread_name: str = "conveyor-amqp-publisher",
    ) -> None:
        self._params = params
        self._setup = setup
        self._describe_fatal = describe_fatal
        self._max_attempts = max_attempts
        self._thread_name = thread_name
        self._incoming: queue.SimpleQueue[_Operation | object] = queue.SimpleQueue()
        self._pending: deque[_Operation] = deque()  # owner thread only
        self._closing = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        # Read by callers to wake the owner; assigned only by the owner thread.
        self._connection: BlockingConnection | None = None

    def call(self, run: Callable[[BlockingChannel], T], *, timeout: float) -> T:
        """Run ``run(channel)`` on the publisher's confirm-mode channel and return its result.

        Raises :class:`BrokerError` when it keeps failing, or after ``timeout`` seconds.
        """
        future: Future[Any] = Future()
        operation = _Operation(run, future, time.monotonic() + timeout)
        with self._lock:
            if self._closing.is_set():
                raise BrokerError("the AMQP publisher is closed")
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name=self._thread_name, daemon=True
                )
                self._thread.start()
            self._incoming.put(operation)
        self._wake()
        try:
            result: T = future.result(timeout=timeout + 1.0)
        except FutureTimeout:
            operation.abandoned = True
            raise BrokerError(
                f"RabbitMQ did not confirm within {timeout:g}s"
                + (f" (errors: {'; '.join(operation.errors)})" if operation.errors else "")
            ) from None
        return result

    def close(self) -> None:
        """Fail queued operations, close the connection and join the thread."""
        with self._lock:
            self._closing.set()
            thread = self._thread
        self._incoming.put(_SHUTDOWN)
        self._wake()
        if thread is not None:
            thread.join()

    def _wake(self) -> None:
        connection = self._connection
        if connection is None:
            return  # the owner is not inside pika: it reads the queue before blocking
        # A closing connection refuses: the owner drains the queue before reconnecting.
        with contextlib.suppress(pex.AMQPError):
            connection.add_callback_threadsafe(_nothing)

    # -- the owner thread ---------------------------------------------------------------

    def _run(self) -> None:
        channel: BlockingChannel | None = None
        try:
            while not self._closing.is_set():
                if self._connection is None:
                    if not self._wait_for_work():
                        break
                    channel = self._connect()
                    if channel is None:
                        continue
                assert self._connection is not None and channel is not None
                self._drain_incoming()
                operation = self._next_operation()
                if operation is None:
                    self._pump(self._connection)
                    continue
                channel = self._perform(operation, channel)
        finally:
            close_quietly(self._connection)
            self._connection = None
            self._drain_incoming()
            self._fail_all(BrokerError("the AMQP publisher was closed"))

    def _wait_for_work(self) -> bool:
        """Block until an operation is queued (no connection to keep alive meanwhile)."""
        self._drain_incoming()
        while not self._pending:
            item = self._incoming.get()
            if item is _SHUTDOWN:
                return False
            assert isinstance(item, _Operation)
            self._pending.append(item)
        return not self._closing.is_set()

    def _connect(self) -> BlockingChannel | None:
        def setup(connection: BlockingConnection) -> BlockingChannel:
            channel = connection.channel()
            channel.confirm_delivery()
            self._setup(channel)
            return channel

        try:
            connection, channel = open_with_backoff(
                self._params,
                setup,
                should_stop=lambda: self._closing.is_set() or not self._live_pending(),
                wake=self._closing,
                what="publisher",
                on_failure=self._charge_all,
            )
        except Stopping:
            return None
        except Exception as exc:
            error = self._describe_fatal(exc) if is_fatal(exc) else BrokerError(repr(exc))
            _log.error("publisher: %s", error)
            self._drain_incoming()
            self._fail_all(error)
            return None
        self._connection = connection
        return channel

    def _perform(self, operation: _Operation, channel: BlockingChannel) -> BlockingChannel | None:
        try:
            result = operation.run(channel)
        except (pex.UnroutableError, pex.NackError) as exc:
            # Unroutable means the queue vanished: declare it again before the retry.
            self._retry(operation, exc)
            if isinstance(exc, pex.UnroutableError):
                self._redeclare(channel)
            return channel
        except pex.ChannelClosedByBroker as exc:
            self._retry(operation, exc)
            return self._reopen_channel()
        except Exception as exc:
            if not is_transient(exc):
                operation.future.set_exception(exc)
                return channel
            self._retry(operation, exc)
            _log.warning("publisher: connection lost (%r); reconnecting", exc)
            close_quietly(self._connection)
            self._connection = None
            return None
        operation.future.set_result(result)
        return channel

    def _redeclare(self, channel: BlockingChannel) -> None:
        try:
            self._setup(channel)
        except pex.AMQPError as exc:
            _log.warning("publisher: re-declaring the topology failed: %r", exc)

    def _reopen_channel(self) -> BlockingChannel | None:
        assert self._connection is not None
        try:
            channel = self._connection.channel()
            channel.confirm_delivery()
            # Whatever the broker closed the channel over (a missing queue or exchange)
            # is best cured by declaring the topology again.
            self._setup(channel)
            return channel
        except pex.AMQPError as exc:
            _log.warning("publisher: reopening the channel failed (%r); reconnecting", exc)
            close_quietly(self._connection)
            self._connection = None
            return None

    def _pump(self, connection: BlockingConnection) -> None:
        try:
            connection.process_data_events(time_limit=_IDLE_PUMP)
        except Exception as exc:
            _log.warning("publisher: connection lost while idle (%r)", exc)
            close_quietly(connection)
            self._connection = None

    def _drain_incoming(self) -> None:
        while True:
            try:
                item = self._incoming.get_nowait()
            except queue.Empty:
                return
            if isinstance(item, _Operation):
                self._pending.append(item)

    def _next_operation(self) -> _Operation | None:
        while self._pending:
            operation = self._pending.popleft()
            if self._expired(operation):
                continue
            return operation
        return None

    def _expired(self, operation: _Operation) -> bool:
        if operation.abandoned or operation.future.done():
            return True
        if time.monotonic() > operation.deadline:
            operation.future.set_exception(
                BrokerError("RabbitMQ did not confirm in time: " + "; ".join(operation.errors))
            )
            return True
        return False

    def _live_pending(self) -> bool:
        self._drain_incoming()
        return any(not self._expired(op) for op in self._pending)

    def _retry(self, operation: _Operation, exc: BaseException) -> None:
        operation.attempts += 1
        operation.errors.append(repr(exc))
        if operation.attempts >= self._max_attempts:
            operation.future.set_exception(
                BrokerError(
                    f"RabbitMQ did not take the message after {operation.attempts} attempts: "
                    + "; ".join(operation.errors)
                )
            )
        else:
            self._pending.appendleft(operation)

    def _charge_all(self, exc: BaseException) -> None:
        """A failed connection attempt counts against every waiting operation."""
        self._drain_incoming()
        waiting = [op for op in self._pending if not self._expired(op)]
        self._pending.clear()
        for operation in reversed(waiting):
            self._retry(operation, exc)

    def _fail_all(self, error: BrokerError) -> None:
        while self._pending:
            operation = self._pending.popleft()
            if not operation.future.done():
                operation.future.set_exception(error)


def _nothing() -> None:
    """Wake-up callback: running it is what makes ``process_data_events`` return."""
