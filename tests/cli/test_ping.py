"""`conveyor ping`: the health check a script runs after `conveyor serve &`."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

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
