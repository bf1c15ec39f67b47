"""Helpers for tests against the real RabbitMQ: raw pika access and broker-side faults."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager

import pika
import pytest
from pika.adapters.blocking_connection import BlockingChannel

from broker.amqp_support import Topology


@contextmanager
def raw_channel(url: str) -> Iterator[BlockingChannel]:
    """A plain pika channel, to look at the broker independently of the adapter."""
    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        yield connection.channel()
    finally:
        if connection.is_open:
            connection.close()


def delete_topology(url: str, topology: Topology) -> None:
    with raw_channel(url) as channel:
        channel.queue_delete(topology.queue)
        channel.queue_delete(topology.dead_letter_queue)
        channel.exchange_delete(topology.dead_letter_exchange)
        channel.exchange_delete(topology.control_exchange)


def wait_for_messages(url: str, queue: str, count: int, timeout: float = 10.0) -> list[bytes]:
    """Consume (and ack) ``count`` messages from ``queue``; fails if they do not arrive."""
    bodies: list[bytes] = []
    with raw_channel(url) as channel:
        for method, _props, body in channel.consume(queue, inactivity_timeout=timeout):
            if method is None:
                break
            channel.basic_ack(method.delivery_tag)
            bodies.append(body)
            if len(bodies) == count:
                break
        channel.cancel()
    assert len(bodies) == count, f"{queue}: expected {count} messages, got {bodies!r}"
    return bodies


def _rabbitmqctl(*args: str) -> str:
    tool = shutil.which("rabbitmqctl")
    if tool is None:
        message = "rabbitmqctl is not available to inject broker faults"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(f"!!! SKIPPED: {message}")
    result = subprocess.run(
        [tool, "-q", *args], capture_output=True, text=True, timeout=60, check=False
    )
    if result.returncode != 0:
        pytest.fail(f"rabbitmqctl {' '.join(args)} failed: {result.stderr or result.stdout}")
    return result.stdout


def force_close_connections(name_prefix: str) -> int:
    """Close, broker-side, every connection whose ``connection_name`` starts with the prefix.

    Targets only the test's own connections: the broker is shared with other tests.
    """
    listing = _rabbitmqctl("--no-table-headers", "list_connections", "pid", "client_properties")
    closed = 0
    for line in listing.splitlines():
        pid, _, properties = line.partition("\t")
        if f'{{"connection_name","{name_prefix}' in properties:
            _rabbitmqctl("close_connection", pid, "test: forced close")
            closed += 1
    return closed


def stop_broker_app() -> None:
    _rabbitmqctl("stop_app")


def start_broker_app() -> None:
    _rabbitmqctl("start_app")
