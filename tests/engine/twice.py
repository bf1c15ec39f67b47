"""Actors that handle every message twice: each kind of message duplicated at whatever
point of a build's life it arrives (issue 12).

A copy of a message that carries a broker delivery carries a delivery of its own, as
a redelivery would: each must be settled exactly once (`COPIES` keeps them to check).
"""

from __future__ import annotations

import dataclasses
import threading
from typing import Any

from actors.build_actor import BuildActor
from actors.messages import Describe
from actors.supervisor import Supervisor


class CopiedDelivery:
    """The broker's second delivery of a message."""

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.redelivered = True
        self.settled: list[str] = []
        self._lock = threading.Lock()

    def ack(self) -> None:
        with self._lock:
            self.settled.append("ack")

    def reject(self, requeue: bool) -> None:
        with self._lock:
            self.settled.append("requeue" if requeue else "dead-letter")

    def __repr__(self) -> str:
        return f"CopiedDelivery({self.body!r}, settled={self.settled})"


COPIES: list[CopiedDelivery] = []
HANDLED: dict[str, int] = {}  # message kind -> copies handled, to show what was covered
_lock = threading.Lock()


def copy_of(message: Any) -> Any | None:
    """The duplicate of ``message`` (None: not one of ours, or an ask to answer once)."""
    if not dataclasses.is_dataclass(message) or isinstance(message, type | Describe):
        return None
    fields = {f.name for f in dataclasses.fields(message)}
    with _lock:
        HANDLED[type(message).__name__] = HANDLED.get(type(message).__name__, 0) + 1
    if "delivery" in fields and message.delivery is not None:
        copy = CopiedDelivery(message.delivery.body)
        with _lock:
            COPIES.append(copy)
        return dataclasses.replace(message, delivery=copy)
    return message


class TwiceBuildActor(BuildActor):
    def on_receive(self, message: Any) -> Any:
        result = super().on_receive(message)
        copy = copy_of(message)
        if copy is not None:
            super().on_receive(copy)
        return result


class TwiceSupervisor(Supervisor):
    build_actor = TwiceBuildActor

    def on_receive(self, message: Any) -> Any:
        result = super().on_receive(message)
        copy = copy_of(message)
        if copy is not None:
            super().on_receive(copy)
        return result
