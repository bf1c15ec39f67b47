"""`conveyor run` as a user runs it: a real process, real exit codes, real output."""

from __future__ import annotations

import json
import os
import pty
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def conveyor(*args: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("CONVEYOR_DATABASE_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "cli.main", *args], cwd=ROOT, env=env, capture_output=True,
        text=True, timeout=120, **kwargs,  # type: ignore[call-overload]
    )


def test_hello_example_succeeds_with_json_result() -> None:
    proc = conveyor("run", "examples/hello.yaml", "--json")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)  # stdout is exactly one JSON object
    assert result["status"] == "SUCCEEDED"
    assert [job["key"] for job in result["jobs"]] == ["greet"]
    job = result["jobs"][0]
    assert job["status"] == "SUCCEEDED" and job["exit_code"] == 0
    assert [s["status"] for s in job["steps"]] == ["SUCCEEDED", "SUCCEEDED"]
    assert "Hello from Conveyor, build 1" in proc.stderr  # logs go to stderr with --json


def test_failure_example_exits_1_with_github_semantics() -> None:
    proc = conveyor("run", "examples/failure.yaml", "--json")
    assert proc.returncode == 1, proc.stderr
    result = json.loads(proc.stdout)
    statuses = {job["key"]: job["status"] for job in result["jobs"]}
    assert statuses == {"flaky": "FAILED", "test": "FAILED", "deploy": "SKIPPED",
                        "notify": "SUCCEEDED", "cleanup": "SUCCEEDED"}
    assert result["status"] == "FAILED" and "test" in result["reason"]
    cleanup = next(j for j in result["jobs"] if j["key"] == "cleanup")
    assert [s["status"] for s in cleanup["steps"]] == ["SUCCEEDED", "FAILED", "SUCCEEDED"]


def test_diamond_and_matrix_examples_succeed() -> None:
    for example in ("examples/diamond.yaml", "examples/matrix.yaml"):
        proc = conveyor("run", example, "--json")
        assert proc.returncode == 0, (example, proc.stderr)
        result = json.loads(proc.stdout)
        assert all(job["status"] == "SUCCEEDED" for job in result["jobs"]), result
    diamond = json.loads(conveyor("run", "examples/diamond.yaml", "--json").stdout)
    version = next(j for j in diamond["jobs"] if j["key"] == "build")["outputs"]["version"]
    assert version.startswith("1.4.")


def test_inputs_are_passed_and_checked() -> None:
    proc = conveyor("run", "examples/inputs.yaml", "--input", "who=tester", "--input",
                    "loud=true")
    assert proc.returncode == 0, proc.stderr
    assert "hello, tester" in proc.stdout and "HELLO, tester!" in proc.stdout
    bad = conveyor("run", "examples/inputs.yaml", "--input", "nobody=x")
    assert bad.returncode == 2
    assert "nobody" in bad.stderr


def test_invalid_workflow_exits_2_with_positions(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("jobs:\n  a:\n    needs: [biuld]\n    steps: [{run: x}]\n  build:\n"
                      "    steps: [{run: x}]\n")
    proc = conveyor("run", str(broken))
    assert proc.returncode == 2
    assert f"{broken}:3:" in proc.stderr and "did you mean 'build'" in proc.stderr


def test_an_invalid_workflow_is_reported_like_validate_does(tmp_path: Path) -> None:
    broken = tmp_path / "needs.yaml"
    broken.write_text("jobs:\n  a:\n    needs: [nope, zip]\n    steps: [{run: x}]\n")
    plain = conveyor("run", str(broken))
    assert plain.returncode == 2 and plain.stdout == ""
    checked = conveyor("validate", str(broken))
    assert plain.stderr.replace("conveyor run:", "conveyor validate:") == checked.stderr
    assert plain.stderr.splitlines()[-1] == f"conveyor run: 2 errors in {broken}"
    as_json = conveyor("run", str(broken), "--json")
    assert as_json.returncode == 2
    error = json.loads(as_json.stdout)["error"]
    assert error["code"] == "INVALID_ARGUMENT" and error["message"] == f"2 errors in {broken}"
    assert [(d["line"], d["path"]) for d in error["details"]] == [
        (3, "jobs.a.needs[0]"), (3, "jobs.a.needs[1]")]


def test_an_input_the_server_refuses_is_a_json_error_under_json() -> None:
    proc = conveyor("run", "examples/inputs.yaml", "--input", "bogus=1", "--json")
    assert proc.returncode == 2, proc.stderr
    error = json.loads(proc.stdout)["error"]
    assert error["code"] == "INVALID_ARGUMENT" and "unknown input 'bogus'" in error["message"]
    assert proc.stderr.splitlines()[-1].startswith("conveyor run: inputs.bogus: ")


def test_missing_file_exits_2() -> None:
    proc = conveyor("run", "no/such/file.yaml")
    assert proc.returncode == 2 and "cannot read" in proc.stderr


def _read_until(fd: int, needle: bytes, deadline: float) -> bytes:
    data = b""
    while needle not in data:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"{needle!r} never appeared in {data[-2000:]!r}")
        ready, _, _ = select.select([fd], [], [], remaining)
        if ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                break
            if not chunk:
                break
            data += chunk
    return data


def test_terminal_live_view_and_ctrl_c_cancels(tmp_path: Path) -> None:
    workflow = tmp_path / "long.yaml"
    workflow.write_text("jobs:\n  quick:\n    steps: [{run: echo fast}]\n  long:\n"
                        "    needs: quick\n    steps: [{run: 'echo started; sleep 60'}]\n")
    master, slave = pty.openpty()
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "120"}
    env.pop("CONVEYOR_DATABASE_URL", None)
    proc = subprocess.Popen([sys.executable, "-m", "cli.main", "run", str(workflow)], cwd=ROOT,
                            stdin=slave, stdout=slave, stderr=slave, env=env)
    os.close(slave)
    try:
        seen = _read_until(master, b"started", time.monotonic() + 60)
        # The table is redrawn in place on a terminal and shows the DAG edge "← quick".
        seen += _read_until(master, b"\xe2\x86\x90 quick", time.monotonic() + 30)
        assert b"\x1b[" in seen
        proc.send_signal(signal.SIGINT)
        rest = _read_until(master, b"CANCELLED", time.monotonic() + 30)
        assert proc.wait(30) == 1
        assert b"cancelling" in seen + rest
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)


@pytest.mark.parametrize("example", sorted(p.name for p in (ROOT / "examples").glob("*.yaml")))
def test_every_example_validates(example: str) -> None:
    proc = conveyor("validate", f"examples/{example}")
    assert proc.returncode == 0, proc.stdout + proc.stderr
