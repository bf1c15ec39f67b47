"""Choosing the adapter from the configured URL."""

from __future__ import annotations

import pytest

from broker import open_queue
from broker.amqp import AmqpQueue
from broker.memory import MemoryQueue


def test_memory_url_gives_an_in_process_queue() -> None:
    queue = open_queue("memory://")
    try:
        assert isinstance(queue, MemoryQueue)
        queue.publish_build(b"x")
        assert queue.depth() == 1
    finally:
        queue.close()


@pytest.mark.parametrize("url", ["amqp://guest:guest@127.0.0.1:5672/%2F", "amqps://mq.example"])
def test_amqp_urls_give_the_rabbitmq_adapter_without_connecting(url: str) -> None:
    queue = open_queue(url, queue="q.builds", prefix="q")
    try:
        assert isinstance(queue, AmqpQueue)
        assert queue.topology.queue == "q.builds"
        assert queue.topology.control_exchange == "q.control"
    finally:
        queue.close()


@pytest.mark.parametrize("url", ["redis://user:secret@host/0", "localhost:5672", ""])
def test_other_urls_are_refused_clearly(url: str) -> None:
    with pytest.raises(ValueError, match=r"memory://, amqp:// or amqps://") as caught:
        open_queue(url)
    assert "secret" not in str(caught.value)


def test_bad_amqp_options_are_refused() -> None:
    with pytest.raises(ValueError, match="delivery_limit must be >= 0, got -2"):
        AmqpQueue("amqp://localhost", delivery_limit=-2)
    with pytest.raises(ValueError, match="queue must be 1-200 characters"):
        AmqpQueue("amqp://localhost", queue="")
    with pytest.raises(ValueError, match="scheme must be amqp or amqps"):
        AmqpQueue("http://localhost")
