"""The client commands as processes against `conveyor serve --role all` started here."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow

FLAKY = """\
on:
  workflow_dispatch:
    inputs:
      who: {default: world}
jobs:
  hello:
    steps:
      - run: echo "hello ${{ inputs.who }}"
  check:
    needs: hello
    steps:
      - run: test -f FIXED_FILE
"""


@dataclass
class Server:
    env: dict[str, str]
    tmp: Path

    def run(self, *args: str, token: str | None = None) -> subprocess.CompletedProcess[str]:
        env = dict(self.env)
        if token is not None:
            env["CONVEYOR_TOKEN"] = token
        return subprocess.run([sys.executable, "-m", "cli.main", *args], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=90)

    def json(self, *args: str, token: str | None = None) -> Any:
        done = self.run(*args, "--json", token=token)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "CONVEYOR_LISTEN": "127.0.0.1:0",
           "CONVEYOR_DATABASE_URL": f"sqlite:///{tmp_path / 'c.db'}",
           "CONVEYOR_WORKDIR": str(tmp_path / "work"), "CONVEYOR_METRICS_LISTEN": "off",
           # The flaky job looks at a file of the test's: outside the sandbox.
           "CONVEYOR_LOCAL_TRUSTED": "1"}
    env.pop("CONVEYOR_TOKEN", None)
    boot = subprocess.run([sys.executable, "-m", "cli.main", "admin", "bootstrap", "--json"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert boot.returncode == 0, boot.stderr
    env["CONVEYOR_TOKEN"] = json.loads(boot.stdout)["secret"]
    proc = subprocess.Popen([sys.executable, "-m", "cli.main", "serve", "--role", "all",
                             "--log-level", "WARNING"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("conveyor serving role all on "), line + proc.stderr.read()
        env["CONVEYOR_ADDR"] = line.rsplit(" ", 1)[1].strip()
        yield Server(env, tmp_path)
    finally:
        proc.terminate()
        proc.wait(30)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def test_bootstrap_refuses_a_second_admin_without_force(server: Server) -> None:
    again = server.run("admin", "bootstrap")
    assert again.returncode == 1 and "admin exists already" in again.stderr
    forced = server.json("admin", "bootstrap", "--name", "second", "--force")
    assert forced["user"] == "second" and forced["secret"].startswith("cvy_")


def test_the_client_commands_end_to_end(server: Server) -> None:
    workflow = server.tmp / "flaky.yaml"
    workflow.write_text(FLAKY.replace("FIXED_FILE", str(server.tmp / "fixed")))
    created = server.json("pipeline", "create", "flaky", "--file", str(workflow))
    assert created["name"] == "flaky" and not created["archived"]
    assert [p["name"] for p in server.json("pipeline", "list")] == ["flaky"]

    # A second user gets a token from the admin and developer rights on the pipeline.
    assert server.json("user", "create", "bob")["name"] == "bob"
    bob = server.json("token", "create", "--user", "bob", "--ttl", "1h")["secret"]
    assert server.json("whoami", token=bob)["name"] == "bob"
    denied = server.run("trigger", "flaky", token=bob)
    assert denied.returncode == 1 and denied.stderr == "conveyor trigger: no pipeline 'flaky'\n"
    server.json("member", "add", "flaky", "bob", "developer")
    shown = server.json("pipeline", "show", "flaky", token=bob)
    assert {m["user"]: m["role"] for m in shown["members"]} == {
        "admin": "ROLE_ADMIN", "bob": "ROLE_DEVELOPER"}

    failed = server.run("trigger", "flaky", "--input", "who=cli", "--follow", "--json",
                        token=bob)
    assert failed.returncode == 1, failed.stderr
    build = json.loads(failed.stdout)
    assert build["status"] == "BUILD_STATUS_FAILED" and build["triggered_by"] == "bob"
    build_id = str(build["id"])
    logs = server.run("logs", build_id, "--job", "hello", token=bob)
    assert logs.returncode == 0 and "hello cli" in logs.stdout
    listed = server.json("builds", "--pipeline", "flaky", "--status", "failed", token=bob)
    assert [b["id"] for b in listed] == [build["id"]]
    status = server.run("status", build_id, token=bob)
    assert status.returncode == 0 and "check" in status.stdout and "FAILED" in status.stdout

    (server.tmp / "fixed").touch()
    retried = server.run("retry", build_id, "--follow", "--json", token=bob)
    assert retried.returncode == 0, retried.stderr
    final = json.loads(retried.stdout)
    assert final["status"] == "BUILD_STATUS_SUCCEEDED" and final["attempt"] == 2
    assert {j["key"]: j["attempt"] for j in final["jobs"]} == {"hello": 1, "check": 2}

    again = server.run("retry", build_id, token=bob)
    assert again.returncode == 1 and again.stderr.startswith("conveyor retry: ")

    queued = server.json("trigger", "flaky", token=bob)
    cancelled = server.run("cancel", str(queued["id"]), token=bob)
    # The engine may finish the build first: then cancel says so and exits 1.
    assert cancelled.returncode == 0 or "had already finished" in cancelled.stderr
    assert server.json("status", str(queued["id"]), token=bob)["status"] in (
        "BUILD_STATUS_CANCELLED", "BUILD_STATUS_RUNNING", "BUILD_STATUS_SUCCEEDED")

    tokens = server.json("token", "list", token=bob)
    server.json("token", "revoke", str(tokens[0]["id"]), token=bob)
    revoked = server.run("whoami", token=bob)
    assert revoked.returncode == 1 and "was revoked" in revoked.stderr
    server.json("member", "remove", "flaky", "bob")
    archived = server.json("pipeline", "archive", "flaky")
    assert archived["archived"]


def test_errors_print_the_status_and_exit_2_for_bad_input(server: Server) -> None:
    bad = server.tmp / "bad.yaml"
    bad.write_text("jobs:\n  a:\n    needs: b\n    steps: [{run: x}]\n")
    done = server.run("pipeline", "create", "bad", "--file", str(bad), "--json")
    assert done.returncode == 2
    assert f"{bad}:3:12: jobs.a.needs: unknown job 'b'" in done.stderr
    error = json.loads(done.stdout)["error"]
    assert error["code"] == "INVALID_ARGUMENT" and error["details"]
    assert server.run("status", "not-a-number").returncode == 2
    missing = server.run("status", "99999")
    assert missing.returncode == 1 and "99999" in missing.stderr
    nobody = server.run("pipeline", "list", token="")
    env_less = dict(server.env)
    env_less.pop("CONVEYOR_TOKEN")
    anonymous = subprocess.run([sys.executable, "-m", "cli.main", "pipeline", "list"],
                               cwd=ROOT, env=env_less, capture_output=True, text=True,
                               timeout=60)
    assert anonymous.returncode == 1 and "needs a token" in anonymous.stderr
    assert nobody.returncode == 1
