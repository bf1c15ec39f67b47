"""An all-in-one runtime on SQLite + memory queue + local backend, driven over gRPC."""

from __future__ import annotations

import json
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import store
from actors.backends import Backend
from conveyor.v1 import common_pb2, pipeline_pb2
from rpc import tokens
from rpc.client import Client, connect
from runtime import Config, Runtime


def issue_admin_token(user: str = "local", ttl_s: float = 24 * 3600) -> str:
    """A fresh token of the instance admin ``user`` (created if missing) in the open
    store, for tests' and benches' in-process clients. The product never makes one:
    `conveyor run` signs in as a plain user (cli/run_store.py)."""
    secret = tokens.new_token()
    store.bootstrap_admin(user, tokens.token_hash(secret), token_name="embedded",
                          force=True, expires_at=store.utcnow() + timedelta(seconds=ttl_s))
    return secret

BUILD_STATUS = {v: k.removeprefix("BUILD_STATUS_") for k, v in common_pb2.BuildStatus.items()}
JOB_STATUS = {v: k.removeprefix("JOB_STATUS_") for k, v in common_pb2.JobStatus.items()}
STEP_STATUS = {v: k.removeprefix("STEP_STATUS_") for k, v in common_pb2.StepStatus.items()}


@dataclass
class Result:
    build: common_pb2.Build
    seen: list[common_pb2.Build] = field(default_factory=list)  # every WatchBuild message

    @property
    def status(self) -> str:
        return BUILD_STATUS[self.build.status]

    def job(self, key: str) -> common_pb2.Job:
        for job in self.build.jobs:
            if job.key == key:
                return job
        raise KeyError(f"no job {key!r} in {[j.key for j in self.build.jobs]}")

    def job_status(self, key: str) -> str:
        return JOB_STATUS[self.job(key).status]

    def statuses(self) -> dict[str, str]:
        return {job.key: JOB_STATUS[job.status] for job in self.build.jobs}

    def ever(self, key: str, status: str) -> bool:
        """Whether WatchBuild ever showed job ``key`` in ``status``."""
        return any(
            JOB_STATUS[j.status] == status for b in self.seen for j in b.jobs if j.key == key
        )


class Engine:
    def __init__(self, runtime: Runtime, client: Client, workdir: Path) -> None:
        self.runtime = runtime
        self.client = client
        self.workdir = workdir
        self._count = 0

    def start(self, yaml_text: str, inputs: dict[str, str] | None = None) -> common_pb2.Build:
        self._count += 1
        name = f"p{self._count}"
        text = textwrap.dedent(yaml_text)
        self.client.pipelines.CreatePipeline(
            pipeline_pb2.CreatePipelineRequest(name=name, workflow_yaml=text), timeout=10)
        response = self.client.pipelines.StartPipelineBuild(
            pipeline_pb2.StartPipelineBuildRequest(pipeline=name, inputs=inputs or {}), timeout=10)
        build: common_pb2.Build = response.build
        return build

    def watch(self, build_id: int, timeout: float = 60) -> Result:
        seen: list[common_pb2.Build] = []
        call = self.client.pipelines.WatchBuild(
            pipeline_pb2.WatchBuildRequest(build_id=build_id), timeout=timeout)
        for message in call:
            seen.append(message.build)
        return Result(seen[-1], seen)

    def run(self, yaml_text: str, inputs: dict[str, str] | None = None,
            timeout: float = 60) -> Result:
        build = self.start(yaml_text, inputs)
        return self.watch(build.id, timeout)

    def cancel(self, build_id: int) -> None:
        self.client.pipelines.CancelBuild(
            pipeline_pb2.CancelBuildRequest(build_id=build_id), timeout=10)

    def logs(self, build_id: int, job_key: str = "", from_line: int = 0,
             follow: bool = False) -> list[common_pb2.LogLine]:
        call = self.client.pipelines.StreamBuildLogs(
            pipeline_pb2.StreamBuildLogsRequest(
                build_id=build_id, job_key=job_key, from_line=from_line, follow=follow),
            timeout=120)
        return [line for message in call for line in message.lines]

    def log_text(self, build_id: int, job_key: str) -> list[str]:
        return [line.text for line in self.logs(build_id, job_key)]


@contextmanager
def engine(tmp_path: Path, job_backend: Backend | None = None, **config: Any) -> Iterator[Engine]:
    """A runtime on the backend config names (local), or on ``job_backend`` (a fake)."""
    cfg = Config.from_env(
        env={},
        role="all",
        listen="127.0.0.1:0",
        database_url=config.pop("database_url", f"sqlite:///{tmp_path / 'conveyor.db'}"),
        queue_url="memory://",
        workdir=tmp_path / "work",
        migrate_on_start=True,
        # Engine tests meet through shared files: their jobs are trusted (the sandbox
        # has tests of its own, tests/security).
        **{"local_trusted": True, **config},
    )
    runtime = Runtime(cfg, job_backend)
    try:
        runtime.start()
        with connect(runtime.address, issue_admin_token()) as client:
            yield Engine(runtime, client, tmp_path)
    finally:
        runtime.stop()


def outputs(job: common_pb2.Job) -> dict[str, str]:
    return dict(job.outputs)


def matrix(job: common_pb2.Job) -> dict[str, Any]:
    return {k: json.loads(v) for k, v in job.matrix.items()}


class Barrier:
    """A file-system rendezvous for jobs that must run at the same time."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def arrive_and_wait(self, me: str, other: str, seconds: int = 20) -> str:
        return (
            f"touch {self.root}/{me}; i=0; "
            f"while [ ! -e {self.root}/{other} ]; do i=$((i+1)); "
            f"[ $i -gt {seconds * 20} ] && echo 'never met {other}' && exit 9; sleep 0.05; done"
        )


def eventually(check: Callable[[], bool], what: str, seconds: float = 20) -> None:
    """Wait for a condition seen from outside (actors, threads) that no event announces."""
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"never saw {what}"
        time.sleep(0.02)


def threads_named(name: str) -> int:
    return sum(1 for t in threading.enumerate() if t.name == name)
