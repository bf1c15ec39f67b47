"""What the end-to-end tests do to RabbitMQ directly: foreign messages, the dead-letter
queue, consumer counts, clean-up, and stopping the broker's application."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator, Sequence

import pika


def _connect(url: str) -> pika.BlockingConnection:
    return pika.BlockingConnection(pika.URLParameters(url))


def publish_raw(url: str, queue: str, body: bytes) -> None:
    """Publish ``body`` to ``queue`` (confirmed, persistent) as a foreign producer."""
    connection = _connect(url)
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        channel.basic_publish("", queue, body, pika.BasicProperties(delivery_mode=2),
                              mandatory=True)
    finally:
        connection.close()


def drain(url: str, queue: str) -> list[bytes]:
    """Take every message off ``queue``; their bodies."""
    connection = _connect(url)
    bodies: list[bytes] = []
    try:
        channel = connection.channel()
        while True:
            method, _props, body = channel.basic_get(queue, auto_ack=True)
            if method is None:
                return bodies
            bodies.append(body)
    finally:
        connection.close()


def consumer_count(url: str, queue: str) -> int:
    """Consumers of ``queue``; -1 while the broker cannot be reached."""
    try:
        connection = _connect(url)
    except pika.exceptions.AMQPError:
        return -1
    try:
        return int(connection.channel().queue_declare(queue, passive=True).method.consumer_count)
    except pika.exceptions.AMQPError:
        return -1
    finally:
        with contextlib.suppress(Exception):
            connection.close()


def ready_count(url: str, queue: str) -> int:
    """Messages of ``queue`` waiting for a consumer (not delivered); -1 while the broker
    cannot be reached."""
    try:
        connection = _connect(url)
    except pika.exceptions.AMQPError:
        return -1
    try:
        return int(connection.channel().queue_declare(queue, passive=True).method.message_count)
    except pika.exceptions.AMQPError:
        return -1
    finally:
        with contextlib.suppress(Exception):
            connection.close()


def delete(url: str, *, queues: Sequence[str], exchanges: Sequence[str]) -> None:
    """Delete ``queues`` and ``exchanges`` where they exist; a broker that is down is
    left alone (nothing to clean then)."""
    try:
        connection = _connect(url)
    except pika.exceptions.AMQPError:
        return
    try:
        channel = connection.channel()
        for queue in queues:
            with contextlib.suppress(pika.exceptions.AMQPError):
                channel.queue_delete(queue)
            if not channel.is_open:
                channel = connection.channel()
        for exchange in exchanges:
            with contextlib.suppress(pika.exceptions.AMQPError):
                channel.exchange_delete(exchange)
            if not channel.is_open:
                channel = connection.channel()
    finally:
        with contextlib.suppress(Exception):
            connection.close()


def _rabbitmqctl(*args: str) -> None:
    out = subprocess.run(["rabbitmqctl", *args], capture_output=True, text=True, timeout=120)
    if out.returncode != 0:
        raise RuntimeError(f"rabbitmqctl {' '.join(args)} failed: {out.stdout}{out.stderr}")


@contextlib.contextmanager
def broker_stopped() -> Iterator[None]:
    """RabbitMQ's application stopped (``rabbitmqctl stop_app``) while inside; it is
    always started again on the way out."""
    try:
        _rabbitmqctl("stop_app")
        yield
    finally:
        _rabbitmqctl("start_app")
        _rabbitmqctl("await_startup")
