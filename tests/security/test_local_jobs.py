"""Local jobs through a real runtime: their environment, `container.env`, the sandbox in
both of its modes (setpriv as root, a user namespace otherwise) against an attacker, the
job lifecycle inside it, and the single-user rule where no sandbox can be set up."""

from __future__ import annotations

import logging
import os
import stat
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

import actors.backends.local.policy
import store
from actors.backends.local.actor import Isolation
from actors.backends.local.sandbox import SANDBOX_PATH, probe_sandbox
from support.harness import Engine, engine
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


def _env_of(lines: list[str]) -> dict[str, str]:
    return dict(line.split("=", 1) for line in lines if "=" in line)


def test_a_job_path_holds_no_conveyor_venv_and_no_server_variables(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    venv_bin = os.path.join(sys.prefix, "bin")
    monkeypatch.setenv("PATH", f"{venv_bin}:{os.environ['PATH']}")
    monkeypatch.setenv("VIRTUAL_ENV", sys.prefix)
    monkeypatch.setenv("CONVEYOR_INTERNAL_TOKEN", "cvy_internal")
    monkeypatch.setenv("DEPLOY_KEY", "do-not-leak")
    with engine(tmp_path) as eng:  # trusted: as `conveyor run` runs jobs
        result = eng.run("jobs:\n  a: {steps: [{run: env}]}\n")
        assert result.status == "SUCCEEDED", result.build.reason
        env = _env_of(eng.log_text(result.build.id, "a"))
    assert venv_bin not in env["PATH"].split(":") and "python" not in env["PATH"]
    for name in ("CONVEYOR_INTERNAL_TOKEN", "DEPLOY_KEY", "VIRTUAL_ENV"):
        assert name not in env


def test_container_env_is_applied_under_the_job_env(tmp_path: Path) -> None:
    with engine(tmp_path) as eng:
        result = eng.run("""
            env: {BOTH: workflow}
            jobs:
              a:
                strategy: {matrix: {v: [one]}}
                container:
                  image: node:20
                  env: {FROM_CONTAINER: "c-${{ matrix.v }}-${{ github.run_number }}",
                        BOTH: container}
                steps:
                  - run: echo "$FROM_CONTAINER $BOTH"
            """)
        assert result.status == "SUCCEEDED", result.build.reason
        assert eng.log_text(result.build.id, "a (one)") == ["c-one-1 workflow"]


@pytest.fixture(params=["setpriv", "user namespace"])
def sandboxed(request: pytest.FixtureRequest, tmp_path: Path,
              monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    """The runtime `serve` builds (jobs not trusted), in either sandbox mode."""
    require_sandbox(tmp_path)
    if request.param == "user namespace":
        probed, _ = probe_sandbox(tmp_path / "probe")
        assert probed is not None
        isolation = Isolation(pid_namespace=True, sandbox=replace(probed, setpriv=None))
        monkeypatch.setattr(actors.backends.local.policy, "probe_isolation", lambda _dir: isolation)
    elif os.geteuid() != 0:
        pytest.skip("the setpriv mode is the sandbox of a server running as root")
    with engine(tmp_path, local_trusted=False) as eng:
        yield eng


def test_a_sandboxed_job_cannot_reach_the_server_or_another_job(
        sandboxed: Engine, tmp_path: Path) -> None:
    client = sandboxed.client
    victim = start(client, "victim", VICTIM_STEP)
    assert "victim ready" in log(client, victim.id, until="victim ready")
    [secret] = (tmp_path / "work").glob("*/workspace/secret.txt")
    target = Target(db=tmp_path / "conveyor.db", workdir=tmp_path / "work",
                    server_pid=os.getpid(), secret="cvy_never_seen", victim=secret.parent)
    attacker = finish(client, start(client, "attacker", attack_script(target)).id)
    (secret.parent / "release").touch()
    assert finish(client, victim.id).status == finish(client, attacker.id).status
    assert_all_held(log(client, attacker.id) + log(client, victim.id), target)


def test_a_sandboxed_job_runs_the_hosts_tools_with_a_clean_environment(
        sandboxed: Engine) -> None:
    result = sandboxed.run("""
        jobs:
          a:
            steps:
              - run: |
                  echo hi > "$RUNNER_TEMP/t" && cat "$RUNNER_TEMP/t"
                  echo tmp > /tmp/x && cat /tmp/x
                  touch "$GITHUB_WORKSPACE/file" && python3 -c 'print("python3 runs")'
                  echo "out=$(id -un)" >> "$GITHUB_OUTPUT"
                id: s
              - run: env
            outputs: {user: "${{ steps.s.outputs.out }}"}
        """)
    assert result.status == "SUCCEEDED", result.build.reason
    lines = sandboxed.log_text(result.build.id, "a")
    assert lines[:3] == ["hi", "tmp", "python3 runs"]
    assert dict(result.job("a").outputs) == {"user": "conveyor-job"}
    env = _env_of(lines[3:])
    assert env["PATH"] == SANDBOX_PATH and env["USER"] == "conveyor-job"


def test_a_cancelled_sandboxed_job_still_runs_its_always_steps(sandboxed: Engine) -> None:
    build = sandboxed.start("""
        jobs:
          a:
            steps:
              - run: echo started; sleep 60
              - if: always()
                run: echo cleaned up
        """)
    assert "started" in log(sandboxed.client, build.id, until="started")
    sandboxed.cancel(build.id)
    result = sandboxed.watch(build.id)
    assert result.status == "CANCELLED"
    assert sandboxed.log_text(build.id, "a") == ["started", "cleaned up"]


def test_what_a_sandboxed_job_leaves_running_dies_with_it(sandboxed: Engine) -> None:
    marker = "CONVEYOR_TEST_LEFTOVER=a91f"
    result = sandboxed.run(f"""
        jobs:
          a:
            steps:
              - run: env {marker} setsid sleep 300 > /dev/null 2>&1 &
        """)
    assert result.status == "SUCCEEDED", result.build.reason
    survivors = []
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            if marker.encode() in environ.read_bytes():
                survivors.append(environ.parent.name)
        except OSError:
            continue
    assert survivors == []


@pytest.fixture
def no_sandbox(monkeypatch: pytest.MonkeyPatch) -> None:
    """A host where bwrap cannot sandbox jobs."""
    monkeypatch.setattr(actors.backends.local.policy, "probe_isolation",
                        lambda _dir=None: Isolation(unsandboxed="bwrap is not installed"))


ECHO = "jobs:\n  a: {steps: [{run: echo ran}]}\n"


@pytest.mark.usefixtures("no_sandbox")
def test_without_a_sandbox_jobs_stop_at_the_second_user(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="actors.backends.local.policy"), \
            engine(tmp_path, local_trusted=False) as eng:
        said = [r.getMessage() for r in caplog.records if r.name == "actors.backends.local.policy"]
        assert len(said) == 1 and "CONVEYOR_LOCAL_TRUSTED=1" in said[0], said
        assert "bwrap is not installed" in said[0]
        alone = eng.run(ECHO)  # the instance admin is the only user
        assert alone.status == "SUCCEEDED", alone.build.reason
        store.create_user("bob")
        refused = eng.run(ECHO)
        assert refused.status == "FAILED"
        reason = refused.job("a").reason
        assert "several users and no job sandbox (bwrap is not installed)" in reason, reason
        assert "CONVEYOR_LOCAL_TRUSTED=1" in reason
        assert eng.log_text(refused.build.id, "a") == []


@pytest.mark.usefixtures("no_sandbox")
def test_an_operator_who_trusts_the_jobs_runs_them_for_every_user(tmp_path: Path) -> None:
    with engine(tmp_path, local_trusted=True) as eng:
        store.create_user("bob")
        result = eng.run(ECHO)
        assert result.status == "SUCCEEDED", result.build.reason


def test_the_sqlite_database_is_created_private(tmp_path: Path) -> None:
    db = tmp_path / "home" / "conveyor.db"
    with engine(tmp_path, database_url=f"sqlite:///{db}") as eng:
        assert eng.run(ECHO).status == "SUCCEEDED"
        wal = db.with_name("conveyor.db-wal")
        for path, mode in ((db, 0o600), (wal, 0o600), (db.parent, 0o700),
                           (tmp_path / "work", 0o700)):
            assert stat.S_IMODE(path.stat().st_mode) == mode, (path, oct(path.stat().st_mode))


def test_an_existing_database_is_narrowed_to_its_owner(tmp_path: Path) -> None:
    db = tmp_path / "conveyor.db"
    db.touch(mode=0o644)
    db.chmod(0o644)
    with engine(tmp_path, database_url=f"sqlite:///{db}"):
        assert stat.S_IMODE(db.stat().st_mode) == 0o600
