"""Fixtures: an in-process Kubernetes API emulator, the engine on the Kubernetes backend
pointed at it, and the official client for looking at what the backend did."""

from __future__ import annotations

import json
import urllib.request
from collections import Counter
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pykka
import pytest

from actors.backends.kubernetes.actor import K8sActor
from k8s.manifests import JOB_KEY_ANNOTATION
from observability.description import ActorDescription
from support.harness import Engine, engine
from support.k8s_emulator import Emulator, Settings
from tests.k8s.helpers import NS

__all__ = ["NS"]

# Short timings keep the tests fast (bookmarks, image pull back-off, kill grace).
FAST = Settings(bookmark_interval_s=0.5, pull_backoff_s=0.1, grace_cap_s=1.0)
PENDING_TIMEOUT_S = 1.0


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[Emulator]:
    emu = Emulator(tmp_path / "emulator", settings=FAST)
    emu.start()
    try:
        yield emu
    finally:
        emu.stop()


def kube_engine(tmp_path: Path, emulator: Emulator,
                **config: Any) -> AbstractContextManager[Engine]:
    """The all-in-one runtime with ``CONVEYOR_BACKEND=kubernetes`` on the emulator."""
    return engine(tmp_path, backend="kubernetes", k8s_url=emulator.url, namespace=NS,
                  k8s_pending_timeout_s=PENDING_TIMEOUT_S, **config)


@pytest.fixture
def k8s_eng(tmp_path: Path, emulator: Emulator) -> Iterator[Engine]:
    with kube_engine(tmp_path, emulator) as eng:
        yield eng


def k8s_get(emulator: Emulator, path: str) -> Any:
    """A GET on the emulator's Kubernetes API, as plain JSON (no client models)."""
    with urllib.request.urlopen(f"{emulator.url}{path}", timeout=10) as resp:
        return json.loads(resp.read())


def k8s_jobs(emulator: Emulator) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = k8s_get(
        emulator, f"/apis/batch/v1/namespaces/{NS}/jobs")["items"]
    return items


def k8s_pods(emulator: Emulator) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = k8s_get(emulator, f"/api/v1/namespaces/{NS}/pods")["items"]
    return items


def jobs_per_key(emulator: Emulator) -> Counter[str]:
    """How many Kubernetes Jobs exist for each Conveyor job key."""
    return Counter(j["metadata"]["annotations"][JOB_KEY_ANNOTATION] for j in k8s_jobs(emulator))


def backend() -> ActorDescription:
    """The live K8sActor's self-description (state and counters)."""
    [ref] = pykka.ActorRegistry.get_by_class(K8sActor)
    description: ActorDescription = ref.proxy().describe().get(timeout=5)
    return description
