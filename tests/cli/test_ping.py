"""`conveyor ping`: the health check a script runs after `conveyor serve &`."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from concurrent import futures
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from cli import ping
from rpc.server import EXECUTOR_SERVICE, PIPELINE_SERVICE

ROOT = Path(__file__).resolve().parents[2]


def _ping(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cli.main", "ping", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=60,
                          env={k: v for k, v in os.environ.items() if k != "CONVEYOR_ADDR"})


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_ping_with_nothing_listening_fails_in_one_line() -> None:
    done = _ping("--addr", f"127.0.0.1:{_free_port()}")
    assert done.returncode == 1
    assert "is `conveyor serve` running?" in done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_ping_waits_for_a_server_that_starts_later(tmp_path: Path) -> None:
    port = _free_port()
    env = {**os.environ, "CONVEYOR_LISTEN": f"127.0.0.1:{port}",
           "CONVEYOR_DATABASE_URL": f"sqlite:///{tmp_path / 'c.db'}",
           "CONVEYOR_WORKDIR": str(tmp_path / "work"), "CONVEYOR_METRICS_LISTEN": "off",
           "CONVEYOR_LOCAL_TRUSTED": "1"}
    # ping starts first: it must ride out the server's start-up.
    pinger = subprocess.Popen([sys.executable, "-m", "cli.main", "ping", "--wait", "60",
                               "--addr", f"127.0.0.1:{port}"], cwd=ROOT, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    server = subprocess.Popen([sys.executable, "-m", "cli.main", "serve", "--role", "all",
                               "--log-level", "WARNING"], cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        out, err = pinger.communicate(timeout=90)
        assert pinger.returncode == 0, err
        assert out.strip() == f"127.0.0.1:{port}: serving"
    finally:
        server.terminate()
        server.wait(60)


def _foreign_server(with_health: bool) -> tuple[grpc.Server, int]:
    """Another program's gRPC server (on the port a README reader's server wanted)."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    if with_health:
        checker = health.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(checker, server)
        checker.set("", health_pb2.HealthCheckResponse.SERVING)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return server, port


@pytest.mark.parametrize("with_health", [True, False], ids=["health", "no-health"])
def test_ping_tells_another_programs_grpc_server_from_conveyor(with_health: bool) -> None:
    server, port = _foreign_server(with_health)
    try:
        # --wait does not keep it waiting: a Conveyor server cannot come to that port.
        done = _ping("--addr", f"127.0.0.1:{port}", "--wait", "600")
    finally:
        server.stop(None).wait()
    assert done.returncode == 1 and done.stdout == ""
    line = done.stderr.strip()
    assert "\n" not in line and "Traceback" not in line, done.stderr
    assert line.startswith(f"conveyor ping: 127.0.0.1:{port} answers, but it is no Conveyor "
                           "server: another program has the port")


def test_ping_asks_for_the_services_the_server_registers() -> None:
    assert set(ping.CONVEYOR_SERVICES) == {PIPELINE_SERVICE, EXECUTOR_SERVICE}
