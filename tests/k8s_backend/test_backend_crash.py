"""A K8sActor that crashes takes its threads with it; its restarted successor runs jobs."""

from __future__ import annotations

import pykka
import pytest

from actors.backends.kubernetes.actor import K8sActor
from actors.messages import Tick
from support.harness import Engine, eventually, threads_named

K8S_THREADS = ("k8s-pod-watch", "k8s-ticker", "k8s-launcher")


def test_a_crashed_backend_stops_its_threads_and_its_successor_runs_jobs(
        k8s_eng: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    (old,) = pykka.ActorRegistry.get_by_class(K8sActor)
    assert all(threads_named(name) == 1 for name in K8S_THREADS)

    def explode(self: K8sActor, _msg: Tick) -> None:
        raise RuntimeError("boom")

    with monkeypatch.context() as patch:
        patch.setattr(K8sActor, "_tick", explode)
        old.tell(Tick())
        eventually(lambda: not old.is_alive(), "the backend crashed")
    eventually(lambda: [r for r in pykka.ActorRegistry.get_by_class(K8sActor)
                        if r.actor_urn != old.actor_urn] != [], "a new backend")
    # One watch, one ticker, one launcher: the crashed actor's are gone.
    eventually(lambda: all(threads_named(name) == 1 for name in K8S_THREADS),
               "the crashed backend's threads stopped")
    result = k8s_eng.run("jobs:\n  after: {steps: [{run: echo still here}]}\n")
    assert result.status == "SUCCEEDED"
    assert k8s_eng.log_text(result.build.id, "after") == ["still here"]
