"""The server-side commands' expected errors: one line on stderr, no traceback, exit 2 for
configuration; `admin bootstrap` never creates an admin whose token was not delivered;
`db` and `serve --role` explain themselves in --help."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

import store
from rpc import tokens
from tests.cli.processes import ROOT, cli, env_for
from tests.cli.processes import fresh_pg as fresh_pg

COMMANDS = (("serve",), ("db", "migrate"), ("admin", "bootstrap"))
POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"

# (environment, what the message names); the database URL is SQLite unless given.
BAD_DATABASE = {
    "scheme": ({"CONVEYOR_DATABASE_URL": "mysql://u:secret@h/db"}, "CONVEYOR_DATABASE_URL"),
    "sqlite-parameter": ({"CONVEYOR_DATABASE_URL": "sqlite:///x.db?pool=lots"},
                         "pool='lots' is not an integer"),
    "pool": ({"CONVEYOR_DATABASE_URL": POSTGRES, "CONVEYOR_DB_POOL": "many"},
             "CONVEYOR_DB_POOL"),
    "retry": ({"CONVEYOR_DB_RETRY_S": "soon"}, "CONVEYOR_DB_RETRY_S"),
    "drain": ({"CONVEYOR_DRAIN_S": "nan"}, "CONVEYOR_DRAIN_S"),
}
BAD_SERVER = {
    "number": ({"CONVEYOR_MAX_JOBS": "lots"}, "CONVEYOR_MAX_JOBS"),
    "queue": ({"CONVEYOR_AMQP_URL": "kafka://broker"}, "CONVEYOR_AMQP_URL"),
    "listen": ({"CONVEYOR_LISTEN": "anywhere"}, "CONVEYOR_LISTEN"),
    "metrics": ({"CONVEYOR_METRICS_LISTEN": "9090"}, "CONVEYOR_METRICS_LISTEN"),
    "role": ({"CONVEYOR_ROLE": "both"}, "CONVEYOR_ROLE"),
}
CASES = [(command, case) for command in COMMANDS for case in BAD_DATABASE] + [
    (("serve",), case) for case in BAD_SERVER]


@pytest.mark.parametrize(("command", "case"), CASES,
                         ids=[f"{' '.join(c)}-{case}" for c, case in CASES])
def test_bad_configuration_is_one_line_and_exit_2(
        command: tuple[str, ...], case: str, tmp_path: Path) -> None:
    extra, named = {**BAD_DATABASE, **BAD_SERVER}[case]
    env = env_for(tmp_path, f"sqlite:///{tmp_path / 'c.db'}", **extra)
    done = cli(env, *command)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1, done.stderr
    assert lines[0].startswith(f"conveyor {' '.join(command)}: ") and named in lines[0], lines
    assert "secret" not in done.stderr
    assert not (tmp_path / "x.db").exists()


def _admins(url: str) -> list[str]:
    store.open_database(url)
    try:
        with store.database.connection_context():
            rows = store.database.execute_sql("SELECT name FROM users WHERE is_admin")
            return [row[0] for row in rows]
    finally:
        store.close_database()


def test_bootstrap_into_a_closed_pipe_creates_no_admin(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'c.db'}"
    read, write = os.pipe()
    os.close(read)  # whoever was to read the token is gone (`| head` exited)
    try:
        done = subprocess.run([sys.executable, "-m", "cli.main", "admin", "bootstrap"],
                              cwd=ROOT, env=env_for(tmp_path, url), stdout=write,
                              stderr=subprocess.PIPE, text=True, timeout=60)
    finally:
        os.close(write)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 1 and len(lines) == 1, done.stderr
    assert lines[0].startswith("conveyor admin bootstrap: ") and "no admin was created" in lines[0]
    assert _admins(url) == []


@pytest.mark.parametrize(("argv", "code", "exit_code", "message"), [
    (("--name", "no spaces"), "INVALID_ARGUMENT", 2,
     "--name: 'no spaces' is not a valid user name"),
    ((), "FAILED_PRECONDITION", 1,
     "an instance admin exists already; use their token, or --force to add 'admin' as "
     "another admin"),
    (("--bogus",), "INVALID_ARGUMENT", 2, "unrecognized arguments: --bogus"),
], ids=["name", "exists", "usage"])
def test_bootstrap_errors_are_named_and_json_like_every_command(
        argv: tuple[str, ...], code: str, exit_code: int, message: str,
        tmp_path: Path) -> None:
    env = env_for(tmp_path, f"sqlite:///{tmp_path / 'c.db'}")
    assert cli(env, "admin", "bootstrap").returncode == 0  # an admin exists
    done = cli(env, "admin", "bootstrap", *argv, "--json")
    assert done.returncode == exit_code, done.stderr
    assert json.loads(done.stdout) == {
        "error": {"code": code, "message": message, "details": []}}
    assert done.stderr.splitlines()[-1] == f"conveyor admin bootstrap: {message}"


@pytest.mark.postgres
def test_bootstrap_piped_into_head_delivers_the_token(fresh_pg: str, tmp_path: Path) -> None:
    env = env_for(tmp_path, fresh_pg)
    assert cli(env, "db", "migrate").returncode == 0
    done = subprocess.run(f"{sys.executable} -m cli.main admin bootstrap | head -1",
                          shell=True, cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    secret = done.stdout.strip()
    store.open_database(fresh_pg)
    try:
        found = store.find_token(tokens.token_hash(secret))
    finally:
        store.close_database()
    assert found is not None and found[1].name == "admin" and found[1].is_admin


def test_db_help_says_what_migrate_does() -> None:
    done = cli({**os.environ}, "db", "--help")
    assert done.returncode == 0
    text = " ".join(done.stdout.split())
    assert "migrate: create the schema or bring it up to date" in text
    assert "CONVEYOR_DATABASE_URL; default: sqlite:///~/.conveyor/conveyor.db" in text


def test_serve_help_gives_the_role_and_its_default() -> None:
    done = cli({**os.environ}, "serve", "--help")
    assert done.returncode == 0
    text = " ".join(done.stdout.split())
    assert "CONVEYOR_ROLE; default: all" in text and "pipeline = the API only" in text
    assert "CONVEYOR_LISTEN; default: 127.0.0.1:50051" in text


@pytest.mark.parametrize("variable", ["CONVEYOR_LISTEN", "CONVEYOR_METRICS_LISTEN"])
def test_a_taken_port_is_one_line_naming_the_variable(variable: str, tmp_path: Path) -> None:
    with socket.socket() as taken:  # another program's port
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        address = f"127.0.0.1:{taken.getsockname()[1]}"
        env = env_for(tmp_path, f"sqlite:///{tmp_path / 'c.db'}", **{variable: address})
        env.pop("GRPC_VERBOSITY", None)
        done = cli(env, "serve", "--log-level", "WARNING")
    assert done.returncode == 1 and "serving" not in done.stdout
    # Only Conveyor's line: not gRPC's own `E1203 … add_port.cc:83] Failed to add port`.
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("conveyor serve: ") and address in lines[0]
    assert variable in lines[0]
