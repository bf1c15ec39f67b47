"""Confirmed publishes per second on the local RabbitMQ, one thread and eight threads.

    .venv/bin/python bench/broker_publish.py [--url amqp://...] [--count 5000]

Uses a throw-away queue and prefix, deleted afterwards.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
import uuid
from pathlib import Path

import pika

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from broker.amqp import AmqpQueue

BODY = b"\x08\x01\x12\x24" + b"x" * 60  # about the size of a BuildJob


def _run(queue: AmqpQueue, count: int, threads: int) -> float:
    per_thread = [count // threads + (1 if i < count % threads else 0) for i in range(threads)]
    start = threading.Barrier(threads + 1)
    errors: list[BaseException] = []

    def publish(n: int) -> None:
        start.wait()
        try:
            for _ in range(n):
                queue.publish_build(BODY)
        except BaseException as exc:
            errors.append(exc)

    workers = [threading.Thread(target=publish, args=(n,)) for n in per_thread]
    for worker in workers:
        worker.start()
    start.wait()
    began = time.perf_counter()
    for worker in workers:
        worker.join()
    elapsed = time.perf_counter() - began
    if errors:
        raise errors[0]
    return count / elapsed


def _cleanup(url: str, queue: AmqpQueue) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        channel = connection.channel()
        topology = queue.topology
        channel.queue_delete(topology.queue)
        channel.queue_delete(topology.dead_letter_queue)
        channel.exchange_delete(topology.dead_letter_exchange)
        channel.exchange_delete(topology.control_exchange)
    finally:
        connection.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="amqp://guest:guest@127.0.0.1:5672/%2F")
    parser.add_argument("--count", type=int, default=5000)
    args = parser.parse_args()
    for threads, publishers in ((1, 1), (8, 1), (8, 4)):
        prefix = f"bench-{uuid.uuid4().hex[:8]}"
        queue = AmqpQueue(args.url, queue=f"{prefix}.builds", prefix=prefix, publishers=publishers)
        try:
            for _ in range(publishers):  # connect and declare outside the measurement
                queue.publish_build(BODY)
            rate = _run(queue, args.count, threads)
            print(
                f"{args.count} confirmed publishes, {threads} thread(s), "
                f"{publishers} publisher connection(s): {rate:,.0f} msg/s"
            )
        finally:
            queue.close()
            _cleanup(args.url, queue)


if __name__ == "__main__":
    main()
