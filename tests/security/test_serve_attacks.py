"""Issue 11, critical: a job of `conveyor serve` (the real process, local backend) tries
to reach the server — its database, another job's workspace, its environment, its
process — and fails at every attempt."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest

from conveyor.v1 import common_pb2, identity_pb2
from rpc.client import connect
from tests.security.attacks import (
    PLANTED_TOKEN,
    VICTIM_STEP,
    Target,
    assert_all_held,
    attack_script,
    finish,
    log,
    require_sandbox,
    start,
)

ROOT = Path(__file__).resolve().parents[2]
INTERNAL_TOKEN = "cvy_internal-" + "s3cr3t" * 6


@dataclass
class Server:
    proc: subprocess.Popen[str]
    address: str
    token: str
    db: Path
    workdir: Path


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    require_sandbox(tmp_path)
    db, workdir = tmp_path / "state" / "conveyor.db", tmp_path / "work"
    env = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "CONVEYOR_LISTEN": "127.0.0.1:0",
        "CONVEYOR_DATABASE_URL": f"sqlite:///{db}",
        "CONVEYOR_WORKDIR": str(workdir),
        "CONVEYOR_METRICS_LISTEN": "off",
        # In the server's initial environment, so in its /proc/<pid>/environ for good.
        "CONVEYOR_INTERNAL_TOKEN": INTERNAL_TOKEN,
    }
    env.pop("CONVEYOR_LOCAL_TRUSTED", None)
    boot = subprocess.run([sys.executable, "-m", "cli.main", "admin", "bootstrap", "--json"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert boot.returncode == 0, boot.stderr
    token = json.loads(boot.stdout)["secret"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "serve", "--role", "all", "--log-level", "INFO"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("conveyor serving role all on "), line + proc.stderr.read()
        yield Server(proc, line.rsplit(" ", 1)[1].strip(), token, db, workdir)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def test_a_serve_job_cannot_reach_the_server_or_another_job(server: Server) -> None:
    with connect(server.address, server.token) as client:
        victim = start(client, "victim", VICTIM_STEP)
        assert "victim ready" in log(client, victim.id, until="victim ready")
        [secret] = server.workdir.glob("*/workspace/secret.txt")
        target = Target(db=server.db, workdir=server.workdir, server_pid=server.proc.pid,
                        secret=INTERNAL_TOKEN, victim=secret.parent)
        attacker = finish(client, start(client, "attacker", attack_script(target)).id)
        (secret.parent / "release").touch()
        assert finish(client, victim.id).status == common_pb2.BUILD_STATUS_SUCCEEDED
        assert attacker.status == common_pb2.BUILD_STATUS_SUCCEEDED, attacker.reason
        assert_all_held(log(client, attacker.id) + log(client, victim.id), target)
        # The token the job tried to plant does not authenticate anyone.
        with connect(server.address, PLANTED_TOKEN) as intruder, \
                pytest.raises(grpc.RpcError) as refused:
            intruder.identity.WhoAmI(identity_pb2.WhoAmIRequest(), timeout=10)
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
        # The server is alive and well.
        me = client.identity.WhoAmI(identity_pb2.WhoAmIRequest(), timeout=10)
        assert me.user.admin
    assert server.proc.poll() is None


def test_serve_says_how_jobs_are_isolated_and_keeps_its_files_private(server: Server) -> None:
    assert server.proc.stderr is not None
    with connect(server.address, server.token) as client:
        build = start(client, "who", "id -un")
        assert finish(client, build.id).status == common_pb2.BUILD_STATUS_SUCCEEDED
        lines = log(client, build.id)
    # The job's uid is not the server's, and its name resolves (ssh and git need one).
    assert lines == ["conveyor-job"], lines
    for path, mode in ((server.db, 0o600), (server.db.parent, 0o700), (server.workdir, 0o700)):
        assert stat.S_IMODE(path.stat().st_mode) == mode, (path, oct(path.stat().st_mode))
    server.proc.terminate()
    server.proc.wait(30)
    said = server.proc.stderr.read()
    assert "local backend: every job runs in a bubblewrap sandbox" in said, said
