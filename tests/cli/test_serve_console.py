"""`conveyor serve` as a process: console snapshot, a build over gRPC, graceful SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from conveyor.v1 import common_pb2, pipeline_pb2
from rpc.client import connect

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], str, str]]:
    env = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "CONVEYOR_LISTEN": "127.0.0.1:0",
        "CONVEYOR_DATABASE_URL": f"sqlite:///{tmp_path / 'c.db'}",
        "CONVEYOR_WORKDIR": str(tmp_path / "work"),
        "CONVEYOR_METRICS_LISTEN": "off",  # a fixed port would clash with any other server
    }
    boot = subprocess.run([sys.executable, "-m", "cli.main", "admin", "bootstrap", "--json"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert boot.returncode == 0, boot.stderr
    env["CONVEYOR_TOKEN"] = json.loads(boot.stdout)["secret"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "serve", "--role", "all", "--log-level", "WARNING"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("conveyor serving role all on "), line + proc.stderr.read()
        yield proc, line.rsplit(" ", 1)[1].strip(), env["CONVEYOR_TOKEN"]
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def test_console_once_lists_the_live_actors(server: tuple[subprocess.Popen[str], str, str]) -> None:
    _, address, token = server
    out = subprocess.run([sys.executable, "-m", "cli.main", "console", "--once", "--addr",
                          address], cwd=ROOT, capture_output=True, text=True, timeout=30,
                         env={**os.environ, "CONVEYOR_TOKEN": token})
    assert out.returncode == 0, out.stderr
    for kind in ("Supervisor", "QueueActor", "LogActor", "LocalActor"):
        assert kind in out.stdout
    assert "role=all" in out.stdout and "queue depth=" in out.stdout
    # The local backend's isolation, whole, above the table (not cut in the STATE column).
    header = out.stdout.split("\n\n")[0]
    assert "\nbackend/local: isolation: " in header, out.stdout


def test_build_over_grpc_then_sigterm_is_graceful(
        server: tuple[subprocess.Popen[str], str, str]) -> None:
    proc, address, token = server
    with connect(address, token) as client:
        client.pipelines.CreatePipeline(pipeline_pb2.CreatePipelineRequest(
            name="p", workflow_yaml="jobs:\n  a: {steps: [{run: 'echo hi'}]}\n"), timeout=10)
        build = client.pipelines.StartPipelineBuild(
            pipeline_pb2.StartPipelineBuildRequest(pipeline="p"), timeout=10).build
        last = None
        for message in client.pipelines.WatchBuild(
                pipeline_pb2.WatchBuildRequest(build_id=build.id), timeout=60):
            last = message.build
        assert last is not None and last.status == common_pb2.BUILD_STATUS_SUCCEEDED
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0


def test_logs_pad_prefixes_to_the_longest_job_key_like_run(
        server: tuple[subprocess.Popen[str], str, str]) -> None:
    _, address, token = server
    with connect(address, token) as client:
        client.pipelines.CreatePipeline(pipeline_pb2.CreatePipelineRequest(
            name="keys", workflow_yaml="jobs:\n  a: {steps: [{run: 'echo one'}]}\n"
                                       "  bbb: {needs: a, steps: [{run: 'echo two'}]}\n"),
            timeout=10)
        build = client.pipelines.StartPipelineBuild(
            pipeline_pb2.StartPipelineBuildRequest(pipeline="keys"), timeout=10).build
        for _ in client.pipelines.WatchBuild(
                pipeline_pb2.WatchBuildRequest(build_id=build.id), timeout=60):
            pass
    logs = subprocess.run([sys.executable, "-m", "cli.main", "logs", str(build.id), "--addr",
                           address], cwd=ROOT, capture_output=True, text=True, timeout=30,
                          env={**os.environ, "CONVEYOR_TOKEN": token})
    assert logs.returncode == 0, logs.stderr
    lines = logs.stdout.splitlines()
    assert "a   | one" in lines and "bbb | two" in lines, logs.stdout
    assert {line.index(" | ") for line in lines} == {3}, logs.stdout
