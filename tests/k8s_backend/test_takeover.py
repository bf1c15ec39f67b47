"""kill -9 of an executor whose job runs as a Kubernetes Job: a new executor on the same
database takes the build over after the lease, adopts the Job by name, re-attaches to
its log without losing or repeating a line, and finishes the build."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from conveyor.v1 import common_pb2, pipeline_pb2
from k8s.manifests import job_name
from rpc.client import Client, connect
from support.k8s_emulator import Emulator
from tests.k8s_backend.conftest import NS, jobs_per_key, k8s_pods

ROOT = Path(__file__).resolve().parents[2]


def executor_env(tmp_path: Path, emulator_url: str) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "CONVEYOR_LISTEN": "127.0.0.1:0",
        "CONVEYOR_METRICS_LISTEN": "off",  # a fixed port would clash with any other server
        "CONVEYOR_DATABASE_URL": f"sqlite:///{tmp_path / 'conveyor.db'}",
        "CONVEYOR_WORKDIR": str(tmp_path / "work"),
        "CONVEYOR_BACKEND": "kubernetes",
        "CONVEYOR_K8S_URL": emulator_url,
        "CONVEYOR_NAMESPACE": NS,
        "CONVEYOR_LEASE_S": "2",
        "CONVEYOR_RECONCILE_S": "0.5",
    }


def bootstrap(env: dict[str, str], python: str = sys.executable) -> str:
    boot = subprocess.run([python, "-m", "cli.main", "admin", "bootstrap", "--json"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert boot.returncode == 0, boot.stderr
    token: str = json.loads(boot.stdout)["secret"]
    return token


@contextmanager
def executor(env: dict[str, str], python: str = sys.executable
             ) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """``conveyor serve --role all`` as a process; yields it and its gRPC address."""
    proc = subprocess.Popen(
        [python, "-m", "cli.main", "serve", "--role", "all", "--log-level", "WARNING"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line.startswith("conveyor serving role all on "):
            proc.kill()
            raise AssertionError(line + (proc.stderr.read() if proc.stderr else ""))
        yield proc, line.rsplit(" ", 1)[1].strip()
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def wait_for_line(client: Client, build_id: int, text: str) -> None:
    call = client.pipelines.StreamBuildLogs(
        pipeline_pb2.StreamBuildLogsRequest(build_id=build_id, follow=True), timeout=60)
    try:
        for message in call:
            if any(line.text == text for line in message.lines):
                return
    finally:
        call.cancel()
    raise AssertionError(f"the log ended without {text!r}")


def log_text(client: Client, build_id: int, key: str) -> list[str]:
    call = client.pipelines.StreamBuildLogs(
        pipeline_pb2.StreamBuildLogsRequest(build_id=build_id, job_key=key), timeout=60)
    return [line.text for message in call for line in message.lines]


def final_build(client: Client, build_id: int) -> common_pb2.Build:
    last: common_pb2.Build | None = None
    for message in client.pipelines.WatchBuild(
            pipeline_pb2.WatchBuildRequest(build_id=build_id), timeout=60):
        last = message.build
    assert last is not None
    return last


WORKFLOW = """
jobs:
  j:
    steps:
      - run: |
          for i in $(seq 1 10); do echo "n $i"; done
          while [ ! -e {gate1} ]; do sleep 0.02; done
          for i in $(seq 11 20); do echo "n $i"; done
          while [ ! -e {gate2} ]; do sleep 0.02; done
      - run: for i in $(seq 21 30); do echo "n $i"; sleep 0.01; done
  after:
    needs: j
    steps: [{{run: echo after}}]
"""


def run_takeover(tmp_path: Path, emulator: Emulator, python: str = sys.executable,
                 extra_env: dict[str, str] | None = None) -> None:
    env = {**executor_env(tmp_path, emulator.url), **(extra_env or {})}
    token = bootstrap(env, python)
    gate1, gate2 = tmp_path / "gate1", tmp_path / "gate2"
    with executor(env, python) as (first, address), connect(address, token) as client:
        client.pipelines.CreatePipeline(pipeline_pb2.CreatePipelineRequest(
            name="p", workflow_yaml=WORKFLOW.format(gate1=gate1, gate2=gate2)), timeout=10)
        build = client.pipelines.StartPipelineBuild(
            pipeline_pb2.StartPipelineBuildRequest(pipeline="p"), timeout=10).build
        wait_for_line(client, build.id, "n 10")
        first.kill()  # SIGKILL: no handover, the lease just expires
        first.wait(10)
    # The pod goes on without an executor: lines 11-20 are printed while nobody reads.
    gate1.touch()
    with executor(env, python) as (_second, address), connect(address, token) as client:
        wait_for_line(client, build.id, "n 20")  # re-attached to the running pod
        gate2.touch()
        result = final_build(client, build.id)
        assert result.status == common_pb2.BUILD_STATUS_SUCCEEDED, result
        assert log_text(client, build.id, "j") == [f"n {i}" for i in range(1, 31)]
        assert log_text(client, build.id, "after") == ["after"]
        [job] = [j for j in result.jobs if j.key == "j"]
        assert job.attempt == 1 and job.exit_code == 0
        assert [s.status for s in job.steps] == [common_pb2.STEP_STATUS_SUCCEEDED] * 2
    assert jobs_per_key(emulator) == {"j": 1, "after": 1}
    pods = [p for p in k8s_pods(emulator)
            if p["metadata"]["labels"]["job-name"] == job_name(build.id, "j", 1)]
    assert len(pods) == 1
    assert emulator.stats()["by_verb"]["create jobs"] == 3  # j, j again (409: adopted), after


@pytest.mark.slow
def test_kill_9_executor_then_a_new_one_adopts_the_running_job(
        tmp_path: Path, emulator: Emulator) -> None:
    run_takeover(tmp_path, emulator)
