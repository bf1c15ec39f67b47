"""Build queue adapters: ``memory://`` (embedded, in-process) and ``amqp://`` (RabbitMQ).

Use :func:`open_queue`; the interface is :class:`broker.base.BuildQueue`.
"""

from __future__ import annotations

import urllib.parse

from broker.base import QUEUE_NAME, QUEUE_PREFIX, BrokerError, BuildQueue, Delivery


def open_queue(
    url: str,
    *,
    queue: str = QUEUE_NAME,
    prefix: str = QUEUE_PREFIX,
    delivery_limit: int = 5,
) -> BuildQueue:
    """Open the build queue named by ``url``.

    ``memory://`` gives a fresh in-process queue; ``amqp://`` and ``amqps://`` connect to
    RabbitMQ (lazily: nothing is connected until the first publish or consume).
    ``queue`` and ``prefix`` name the AMQP queue and exchanges.
    """
    scheme = urllib.parse.urlsplit(url).scheme.lower()
    if scheme == "memory":
        from broker.memory import MemoryQueue

        return MemoryQueue(delivery_limit=delivery_limit)
    if scheme in ("amqp", "amqps"):
        from broker.amqp import AmqpQueue

        return AmqpQueue(url, queue=queue, prefix=prefix, delivery_limit=delivery_limit)
    shown = url.split("@")[-1] if "@" in url else url  # never echo credentials
    raise ValueError(
        f"unsupported queue URL {shown!r}: the scheme must be memory://, amqp:// or amqps://"
    )


__all__ = ["BrokerError", "BuildQueue", "Delivery", "open_queue"]
