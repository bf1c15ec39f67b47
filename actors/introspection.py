"""What the operator console sees: every live actor's self-description.

Runs on the caller's thread (a gRPC worker), asking all actors at once and waiting a
bounded time, so one busy actor shows as busy instead of stalling the console.
"""

from __future__ import annotations

import time
from typing import Any

import pykka

from actors.messages import Describe
from observability.description import ActorDescription


def describe_all(timeout: float = 0.5) -> list[ActorDescription]:
    pending: list[tuple[pykka.ActorRef[Any], pykka.Future[Any]]] = []
    for ref in pykka.ActorRegistry.get_all():
        try:
            pending.append((ref, ref.ask(Describe(), block=False)))
        except pykka.ActorDeadError:
            continue
    deadline = time.monotonic() + timeout
    out: list[ActorDescription] = []
    for ref, future in pending:
        try:
            out.append(future.get(timeout=max(0.0, deadline - time.monotonic())))
        except pykka.Timeout:
            out.append(ActorDescription(
                kind=ref.actor_class.__name__, key=ref.actor_urn[-12:],
                state="busy (did not answer in time)", age_seconds=0.0,
            ))
        except pykka.ActorDeadError:
            continue
    kinds = {"Supervisor": 0, "QueueActor": 1, "LogActor": 2, "LocalActor": 3, "K8sActor": 3,
             "BuildActor": 4, "JobActor": 5}
    out.sort(key=lambda d: (kinds.get(d.kind, 9), d.build_id, d.key))
    return out
