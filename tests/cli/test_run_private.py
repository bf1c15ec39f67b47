"""`conveyor run` keeps to a store of its own: a server's configuration in the
environment changes nothing, a server's database is refused, and its identity is never
an instance admin. And it says which workflow settings the local backend ignores."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import store
from rpc import tokens
from store.migrations import migrate
from store.models import Build, Pipeline, User
from tests.cli.test_run_command import ROOT

SERVER_WORKFLOW = "jobs:\n  deploy:\n    steps: [{run: echo the server's own}]\n"
RUN_WORKFLOW = "jobs:\n  hello:\n    steps: [{run: echo from conveyor run}]\n"


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    for name in [n for n in environment if n.startswith("CONVEYOR_")]:
        if env is None or name not in env:
            environment.pop(name, None)
    return subprocess.run([sys.executable, "-m", "cli.main", "run", *args], cwd=ROOT,
                          env=environment, capture_output=True, text=True, timeout=120)


@contextmanager
def opened(url: str) -> Iterator[None]:
    db = store.open_database(url)
    try:
        with db.connection_context():
            yield
    finally:
        store.close_database()


def server_database(tmp_path: Path) -> str:
    """A server's store: an instance admin and the pipeline `web`."""
    url = f"sqlite:///{tmp_path / 'server.db'}"
    migrate(store.open_database(url))
    with opened(url):
        admin, _ = store.bootstrap_admin("alice", tokens.token_hash(tokens.new_token()))
        store.create_pipeline("web", SERVER_WORKFLOW, admin_id=admin.id)
    return url


def server_state(url: str) -> tuple[list[tuple[str, bool]], list[tuple[str, str]], int]:
    with opened(url):
        users = [(u.name, bool(u.is_admin)) for u in User.select().order_by(User.id)]
        pipelines = [(p.name, p.workflow_yaml) for p in Pipeline.select().order_by(Pipeline.id)]
        return users, pipelines, Build.select().count()


def web_yaml(tmp_path: Path) -> Path:
    path = tmp_path / "web.yaml"  # the server's pipeline is called `web` too
    path.write_text(RUN_WORKFLOW)
    return path


def test_the_server_database_in_the_environment_is_left_alone(tmp_path: Path) -> None:
    url = server_database(tmp_path)
    before = server_state(url)
    proc = run(str(web_yaml(tmp_path)), "--json", env={"CONVEYOR_DATABASE_URL": url})
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["status"] == "SUCCEEDED"
    assert "from conveyor run" in proc.stderr
    assert server_state(url) == before  # no pipeline replaced, no build, no user `local`


def test_no_other_server_setting_reaches_conveyor_run(tmp_path: Path) -> None:
    proc = run(str(web_yaml(tmp_path)), "--json", env={
        "CONVEYOR_AMQP_URL": "amqp://nobody:nothing@127.0.0.1:1/%2F",  # would not connect
        "CONVEYOR_BACKEND": "kubernetes",  # would find no cluster
        "CONVEYOR_LISTEN": "127.0.0.1:1",  # would not bind
        "CONVEYOR_ROLE": "executor",  # would want an internal token
    })
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["status"] == "SUCCEEDED"


def test_a_server_database_named_by_flag_is_refused(tmp_path: Path) -> None:
    url = server_database(tmp_path)
    before = server_state(url)
    proc = run(str(web_yaml(tmp_path)), "--database-url", url)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("conveyor run: --database-url: ") and "alice" in lines[0]
    assert "belongs to a server" in lines[0]
    assert server_state(url) == before


def test_a_store_of_its_own_keeps_the_history_without_an_admin(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'mine.db'}"
    workflow = web_yaml(tmp_path)
    first = run(str(workflow), "--json", "--database-url", url)
    assert first.returncode == 0, first.stderr
    workflow.write_text(RUN_WORKFLOW.replace("from conveyor run", "changed"))
    second = run(str(workflow), "--json", "--database-url", url)
    assert second.returncode == 0, second.stderr
    assert "changed" in second.stderr
    users, pipelines, builds = server_state(url)
    assert users == [("local", False)]  # a plain user: creating `web` made it its admin
    assert [name for name, _ in pipelines] == ["web"] and "changed" in pipelines[0][1]
    assert builds == 2


def test_ignored_container_and_runs_on_are_named_once_per_job(tmp_path: Path) -> None:
    workflow = tmp_path / "images.yaml"
    workflow.write_text(
        "jobs:\n"
        "  build:\n"
        "    runs-on: ubuntu-latest\n"
        "    container: node:20\n"
        "    steps: [{run: echo built}]\n"
        "  lint:\n"
        "    container: {image: 'python:3.12', env: {A: b}}\n"
        "    steps: [{run: echo linted}]\n"
        "  test:\n"
        "    runs-on: ${{ matrix.os }}\n"
        "    strategy: {matrix: {os: [ubuntu-22.04, ubuntu-24.04]}}\n"
        "    steps: [{run: echo tested}]\n"
        "  plain:\n"
        "    steps: [{run: echo plain}]\n"
    )
    proc = run(str(workflow), "--json")
    assert proc.returncode == 0, proc.stderr
    why = "ignored: the local backend runs jobs on this host"
    notes = [line for line in proc.stderr.splitlines() if why in line]
    assert notes == [
        f"job build: container node:20 and runs-on ubuntu-latest {why}",
        f"job lint: container python:3.12 {why}",
        f"job test: runs-on ${{{{ matrix.os }}}} {why}",
    ]
    first_log = min(proc.stderr.index(text) for text in ("built", "linted", "tested", "plain"))
    assert proc.stderr.index(notes[-1]) < first_log  # said at the start of the run
