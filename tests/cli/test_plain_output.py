"""What `conveyor` prints where there is no terminal (a pipe, a file, CI): log lines
whose prefix names the job from the first line on, one readable line per state change,
and no client-library chatter."""

from __future__ import annotations

import itertools
import os
import re
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.cli.test_run_command import ROOT, conveyor
from tests.services import require_rabbitmq

STATE = re.compile(
    r"^(?P<what>job .+|build #\d+ of \S+): (?P<status>PENDING|QUEUED|RUNNING|SUCCEEDED|FAILED"
    r"|CANCELLED|SKIPPED|ERROR)(?: in \d+(?:\.\d)?s|(?: in \d+m\d\ds))?(?: — (?P<reason>.+))?$"
)


def test_log_prefixes_name_matrix_legs_from_the_first_line(tmp_path: Path) -> None:
    workflow = tmp_path / "legs.yaml"
    workflow.write_text(
        "jobs:\n"
        "  test:\n"
        "    strategy:\n"
        "      matrix: {os: [ubuntu-22.04, ubuntu-24.04], python: ['3.11', '3.12']}\n"
        "    steps:\n"
        "      - run: echo \"I am ${{ matrix.os }}/${{ matrix.python }}\"\n"
    )
    proc = conveyor("run", str(workflow))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    logged = [line for line in proc.stdout.splitlines() if " | I am " in line]
    assert len(logged) == 4, proc.stdout
    for line in logged:
        key, _, text = line.partition(" | ")
        os_name, python = text.removeprefix("I am ").split("/")
        assert key.strip() == f"test ({os_name}, {python})", line
    # Aligned: every prefix has the width of the longest key.
    assert len({line.index(" | ") for line in logged}) == 1


def test_plain_output_has_one_readable_line_per_state_change() -> None:
    proc = conveyor("run", "examples/failure.yaml")
    assert proc.returncode == 1, proc.stderr
    lines = proc.stdout.splitlines()
    states = [m for m in map(STATE.match, lines) if m]
    # No line says the same thing twice ("SUCCEEDED (succeeded)").
    for line in (line for line in lines if " | " not in line):  # (log lines are the jobs')
        assert not re.search(r"(?i)\b(\w+)\W+\(?\1\)?$", line), line
    by_job: dict[str, list[str]] = {}
    for m in states:
        by_job.setdefault(m["what"], []).append(m["status"])
    assert set(by_job) == {"job flaky", "job test", "job deploy", "job notify", "job cleanup",
                           "build #1 of failure"}, lines
    for what, seen in by_job.items():
        assert all(a != b for a, b in itertools.pairwise(seen)), (what, seen)
        assert seen[-1] in ("SUCCEEDED", "FAILED", "SKIPPED"), (what, seen)
    reasons = {m["what"]: m["reason"] for m in states if m["status"] in ("FAILED", "SKIPPED")}
    assert reasons["job test"].startswith("step ") and "exit code 2" in reasons["job test"]
    assert reasons["job deploy"] == "needs 'test' failed"
    assert reasons["build #1 of failure"] == "job 'test' failed"
    assert [m["status"] for m in states if m["what"] == "job notify"][-1] == "SUCCEEDED"
    succeeded = [line for line in lines if ": SUCCEEDED" in line]
    assert succeeded and all(" — " not in line for line in succeeded), succeeded


@pytest.mark.rabbitmq
def test_serve_keeps_the_rabbitmq_client_quiet(tmp_path: Path) -> None:
    url = require_rabbitmq()
    prefix = f"test-{uuid.uuid4().hex[:12]}"
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "CONVEYOR_METRICS_LISTEN": "off",
           "CONVEYOR_QUEUE_NAME": f"{prefix}.builds", "CONVEYOR_QUEUE_PREFIX": prefix,
           "CONVEYOR_HOME": str(tmp_path)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "serve", "--listen", "127.0.0.1:0",
         "--database-url", f"sqlite:///{tmp_path / 'server.db'}", "--amqp-url", url,
         "--migrate"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert "serving" in first, first + (proc.stderr.read() if proc.stderr else "")
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        from broker.amqp_support import Topology
        from tests.broker.rabbit import delete_topology

        delete_topology(url, Topology(queue=f"{prefix}.builds", prefix=prefix, delivery_limit=5))
    assert "conveyor.runtime" in err  # the server's own INFO lines are still there
    assert "pika" not in err, err
