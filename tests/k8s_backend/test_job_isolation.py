"""Kubernetes jobs and the server (issue 11): the pod spec is least-privileged, a pod's
env holds the workflow's variables and `container.env` but nothing of the server's, and
— with the emulator isolating pods as a node isolates containers — a job's attacks on
the server and on another job fail as they do on the local backend."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from support.harness import Engine
from support.k8s_emulator import Emulator, Settings
from tests.k8s_backend.conftest import FAST, NS, k8s_jobs, kube_engine
from tests.security.attacks import (
    VICTIM_STEP,
    Target,
    assert_all_held,
    attack_script,
    finish,
    log,
    require_sandbox,
    start,
)

SECRET = "cvy_internal_" + "k8s" * 10


def _pod_spec(job: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = job["spec"]["template"]["spec"]
    return spec


def test_container_env_reaches_the_pod_under_the_job_env(k8s_eng: Engine) -> None:
    result = k8s_eng.run("""
        env: {BOTH: workflow}
        jobs:
          j:
            container:
              image: node:22
              env: {FROM_CONTAINER: "c-${{ github.run_number }}", BOTH: container}
            steps: [{run: 'echo "$FROM_CONTAINER $BOTH"'}]
        """)
    assert result.status == "SUCCEEDED", result.build.reason
    assert k8s_eng.log_text(result.build.id, "j") == ["c-1 workflow"]


def test_the_pod_is_least_privileged_and_its_env_holds_no_server_secret(
        k8s_eng: Engine, emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONVEYOR_INTERNAL_TOKEN", SECRET)
    monkeypatch.setenv("CONVEYOR_DATABASE_URL", "postgresql://conveyor:pw@db/conveyor")
    result = k8s_eng.run("""
        env: {MINE: "1"}
        jobs:
          j:
            steps: [{run: env}]
        """)
    assert result.status == "SUCCEEDED", result.build.reason
    lines = k8s_eng.log_text(result.build.id, "j")
    assert not [line for line in lines if SECRET in line or "pw@db" in line]
    [job] = k8s_jobs(emulator)
    pod = _pod_spec(job)
    assert pod["automountServiceAccountToken"] is False
    assert pod["enableServiceLinks"] is False
    for shared in ("hostNetwork", "hostPID", "hostIPC", "shareProcessNamespace"):
        assert pod[shared] is False
    assert "serviceAccountName" not in pod  # the namespace's default, which has no token
    assert [v for v in pod["volumes"] if set(v) != {"name", "emptyDir"}] == []
    [container] = pod["containers"]
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"}}
    assert {e["name"] for e in container["env"]} == {"MINE", "CONVEYOR_NO_REAP"}
    assert "envFrom" not in container


@pytest.fixture
def isolating(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    """The Kubernetes backend on an emulator whose pods are isolated like containers."""
    require_sandbox(tmp_path)
    monkeypatch.setenv("CONVEYOR_INTERNAL_TOKEN", SECRET)
    emu = Emulator(tmp_path / "emulator", settings=Settings(
        bookmark_interval_s=FAST.bookmark_interval_s, pull_backoff_s=FAST.pull_backoff_s,
        grace_cap_s=FAST.grace_cap_s, isolate_pods=True))
    emu.start()
    try:
        with kube_engine(tmp_path, emu) as eng:
            yield eng
    finally:
        emu.stop()


def test_a_pod_cannot_reach_the_server_or_another_pod(isolating: Engine, tmp_path: Path) -> None:
    client = isolating.client
    victim = start(client, "victim", VICTIM_STEP)
    assert "victim ready" in log(client, victim.id, until="victim ready")
    pods = tmp_path / "emulator" / "pods" / NS
    [secret] = pods.glob("*/root/workspace/secret.txt")
    target = Target(db=tmp_path / "conveyor.db", workdir=pods, server_pid=os.getpid(),
                    secret=SECRET, victim=secret.parent)
    attacker = finish(client, start(client, "attacker", attack_script(target)).id)
    (secret.parent / "release").touch()
    assert finish(client, victim.id).status == finish(client, attacker.id).status
    assert_all_held(log(client, attacker.id) + log(client, victim.id), target)
