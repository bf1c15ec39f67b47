"""Client-side helpers for the rpc tests: decode rich errors, drain the memory queue."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from broker.memory import MemoryDelivery, MemoryQueue


def call_error(call: Callable[[], object]) -> grpc.RpcError:
    """Run ``call``, which must fail with an RpcError; return the error."""
    with pytest.raises(grpc.RpcError) as caught:
        call()
    return caught.value


def field_violations(error: grpc.RpcError) -> list[tuple[str, str]]:
    """The google.rpc.BadRequest field violations of a failed call, decoded client-side."""
    status = rpc_status.from_call(error)
    assert status is not None, f"no rich status in {error}"
    found: list[tuple[str, str]] = []
    for detail in status.details:
        bad = error_details_pb2.BadRequest()
        if detail.Unpack(bad):
            found.extend((v.field, v.description) for v in bad.field_violations)
    return found


def take_builds(queue: MemoryQueue, count: int, timeout: float = 5.0) -> list[bytes]:
    """Consume and ack exactly ``count`` BuildJob bodies (fails if fewer arrive)."""
    bodies: list[bytes] = []
    stop = threading.Event()

    def on_delivery(delivery: MemoryDelivery) -> None:
        bodies.append(delivery.body)
        delivery.ack()
        if len(bodies) >= count:
            stop.set()

    thread = threading.Thread(
        target=queue.consume_builds, args=(on_delivery, count, stop), name="test-consumer"
    )
    thread.start()
    arrived = stop.wait(timeout)
    stop.set()
    thread.join()
    assert arrived, f"expected {count} build messages, got {len(bodies)}"
    return bodies


@contextmanager
def control_messages(queue: MemoryQueue) -> Iterator[tuple[list[bytes], threading.Event]]:
    """Collect control broadcasts while the block runs; the event is set on each one."""
    received: list[bytes] = []
    got = threading.Event()
    stop, ready = threading.Event(), threading.Event()

    def on_message(body: bytes) -> None:
        received.append(body)
        got.set()

    thread = threading.Thread(
        target=queue.consume_control,
        args=(on_message, stop),
        kwargs={"ready": ready},
        name="test-control",
    )
    thread.start()
    try:
        assert ready.wait(5.0)
        yield received, got
    finally:
        stop.set()
        thread.join()
