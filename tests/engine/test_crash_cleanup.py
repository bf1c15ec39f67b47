"""A QueueActor that crashes takes its consumers with it; its restarted successor consumes."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pykka
import pytest

from actors.queue_actor import QueueActor
from support.harness import engine, eventually, threads_named


@dataclass(frozen=True)
class _Explode:
    pass


def test_a_crashed_queue_actor_stops_its_consumers_and_its_successor_consumes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with engine(tmp_path) as eng:
        (old,) = pykka.ActorRegistry.get_by_class(QueueActor)
        original = QueueActor.on_receive

        def on_receive(self: QueueActor, message: Any) -> Any:
            if isinstance(message, _Explode):
                raise RuntimeError("boom")
            return original(self, message)

        with monkeypatch.context() as patch:
            patch.setattr(QueueActor, "on_receive", on_receive)
            old.tell(_Explode())
            eventually(lambda: not old.is_alive(), "the queue actor crashed")
        eventually(lambda: any(r.actor_urn != old.actor_urn
                               for r in pykka.ActorRegistry.get_by_class(QueueActor)),
                   "a new queue actor")
        eventually(lambda: threads_named("queue-builds") == 1
                   and threads_named("queue-control") == 1,
                   "the crashed queue actor's consumers stopped")
        assert eng.run("jobs:\n  a: {steps: [{run: 'true'}]}\n").status == "SUCCEEDED"
