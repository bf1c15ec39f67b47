"""`conveyor serve`, `db migrate` and `admin bootstrap` on a real PostgreSQL, as processes.

On PostgreSQL the schema is created by `conveyor db migrate` (once per release, as the
deploy Job does); until then `serve` and `admin bootstrap` refuse in one line saying so,
and `/readyz` fails whenever the schema is missing or behind. A database that does not
exist fails at start in one line. SIGTERM ends `serve` within CONVEYOR_DRAIN_S in every
phase of start-up and while the database is down, without a traceback.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from store.migrations import _ADVISORY_LOCK_KEY, MIGRATIONS
from tests.cli.processes import Served, admin_connection, cli, env_for, pg_execute
from tests.cli.processes import fresh_pg as fresh_pg
from tests.cli.processes import served as served
from tests.observability.conftest import http_get

pytestmark = pytest.mark.postgres

LATEST_VERSION = MIGRATIONS[-1][0]
DRAIN_S = 4.0
# Process teardown after the last stop step (interpreter exit) on a loaded machine.
EXIT_SLACK_S = 1.5


def _one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    return lines[0]


def _probe_base(process: Served) -> str:
    line = process.wait_for("metrics and probes on http://")
    return line.rsplit(" ", 1)[1].strip().removesuffix("/metrics")


def test_admin_bootstrap_on_a_fresh_database_says_to_migrate(fresh_pg: str,
                                                             tmp_path: Path) -> None:
    env = env_for(tmp_path, fresh_pg)
    refused = cli(env, "admin", "bootstrap")
    assert refused.returncode == 1 and refused.stdout == ""
    assert "run `conveyor db migrate`" in _one_line(refused.stderr)
    assert pg_execute(fresh_pg, "SELECT to_regclass('users')") == [(None,)]

    migrated = cli(env, "db", "migrate")
    assert migrated.returncode == 0, migrated.stderr
    assert migrated.stdout.strip() == f"applied migrations: {list(range(1, LATEST_VERSION + 1))}"
    booted = cli(env, "admin", "bootstrap")
    assert booted.returncode == 0, booted.stderr
    assert booted.stdout.startswith("cvy_") and booted.stdout.count("\n") == 1
    assert pg_execute(fresh_pg, "SELECT name, is_admin FROM users") == [("admin", True)]


def test_admin_bootstrap_json_errors_are_json(fresh_pg: str, tmp_path: Path) -> None:
    refused = cli(env_for(tmp_path, fresh_pg), "admin", "bootstrap", "--json")
    assert refused.returncode == 1
    error = json.loads(refused.stdout)["error"]
    assert error["code"] == "FAILED_PRECONDITION" and "conveyor db migrate" in error["message"]


def test_serve_refuses_a_database_without_schema_then_serves_once_migrated(
        fresh_pg: str, tmp_path: Path, served: list[Served]) -> None:
    env = env_for(tmp_path, fresh_pg)
    refused = cli(env, "serve", "--log-level", "WARNING")
    assert refused.returncode == 1 and "serving" not in refused.stdout
    line = _one_line(refused.stderr)
    assert line.startswith("conveyor serve: ") and "run `conveyor db migrate`" in line

    process = Served(env, "serve", "--migrate")
    served.append(process)
    base = _probe_base(process)
    process.wait_for("conveyor serving role all on ")
    code, _, body = http_get(base + "/readyz")
    assert (code, json.loads(body)) == (200, {"status": "ok"})
    assert pg_execute(fresh_pg, "SELECT max(version) FROM schema_versions") == [
        (LATEST_VERSION,)]


def test_readyz_fails_while_the_schema_is_missing_or_behind(
        fresh_pg: str, tmp_path: Path, served: list[Served]) -> None:
    env = env_for(tmp_path, fresh_pg)
    assert cli(env, "db", "migrate").returncode == 0
    process = Served(env, "serve", "--role", "all")
    served.append(process)
    base = _probe_base(process)
    process.wait_for("conveyor serving role all on ")
    assert http_get(base + "/readyz")[0] == 200

    pg_execute(fresh_pg, "DELETE FROM schema_versions")  # e.g. restored from an old dump
    code, _, body = http_get(base + "/readyz")
    assert code == 503
    assert "conveyor db migrate" in json.loads(body)["reasons"]["database"]

    assert cli(env, "db", "migrate").returncode == 0
    assert http_get(base + "/readyz")[0] == 200


def test_a_database_that_does_not_exist_fails_at_start_in_one_line(
        fresh_pg: str, tmp_path: Path) -> None:
    missing = fresh_pg + "_missing"
    name = missing.rsplit("/", 1)[1]
    env = env_for(tmp_path, missing, CONVEYOR_DRAIN_S=str(DRAIN_S))
    for command in (["serve"], ["db", "migrate"], ["admin", "bootstrap"]):
        # Before: `serve` said "serving" and retried forever (this timeout would expire).
        done = cli(env, *command, timeout=30)
        assert done.returncode == 1 and "serving" not in done.stdout, done
        line = _one_line(done.stderr)
        assert line.startswith(f"conveyor {' '.join(command)}: cannot use the database ")
        assert f'database "{name}" does not exist' in line


def test_sigterm_while_waiting_for_the_database_ends_within_the_bound(
        tmp_path: Path, served: list[Served]) -> None:
    closed = "postgresql://postgres@127.0.0.1:1/conveyor"  # nothing listens on port 1
    process = Served(env_for(tmp_path, closed, CONVEYOR_DRAIN_S=str(DRAIN_S)), "serve")
    served.append(process)
    process.wait_for("waiting for the database")
    code, _ = process.terminate_and_time(DRAIN_S + EXIT_SLACK_S)
    assert code == 0 and "Traceback" not in process.text, process.text
    assert "serving" not in process.text


def test_sigterm_while_another_process_migrates_ends_within_the_bound(
        fresh_pg: str, tmp_path: Path, served: list[Served]) -> None:
    holder = admin_connection(fresh_pg)  # stands for a long migration elsewhere
    try:
        with holder.cursor() as cur:
            cur.execute("SELECT pg_advisory_lock(%s)", (_ADVISORY_LOCK_KEY,))
        env = env_for(tmp_path, fresh_pg, CONVEYOR_DRAIN_S=str(DRAIN_S))
        process = Served(env, "serve", "--migrate")
        served.append(process)
        process.wait_for("waiting for another process's schema migration")
        code, _ = process.terminate_and_time(DRAIN_S + EXIT_SLACK_S)
        assert code == 0 and "Traceback" not in process.text, process.text
    finally:
        holder.close()


def test_sigterm_while_serving_ends_within_the_bound(
        fresh_pg: str, tmp_path: Path, served: list[Served]) -> None:
    env = env_for(tmp_path, fresh_pg, CONVEYOR_DRAIN_S=str(DRAIN_S))
    process = Served(env, "serve", "--migrate")
    served.append(process)
    process.wait_for("conveyor serving role all on ")
    code, _ = process.terminate_and_time(DRAIN_S + EXIT_SLACK_S)
    assert code == 0 and "Traceback" not in process.text, process.text


def test_sigterm_during_a_database_outage_ends_within_the_bound(
        fresh_pg: str, tmp_path: Path, served: list[Served]) -> None:
    # The executor's reconciliation keeps calling the store; with the database refusing
    # connections each call retries for CONVEYOR_DB_RETRY_S (30s): before, SIGTERM
    # waited for those retries and then for pykka timeouts, with tracebacks.
    env = env_for(tmp_path, fresh_pg, CONVEYOR_DRAIN_S=str(DRAIN_S),
                  CONVEYOR_RECONCILE_S="0.2")
    process = Served(env, "serve", "--migrate")
    served.append(process)
    process.wait_for("conveyor serving role all on ")
    name = fresh_pg.rsplit("/", 1)[1]
    base = fresh_pg.rsplit("/", 1)[0] + "/postgres"
    pg_execute(base, f"ALTER DATABASE {name} ALLOW_CONNECTIONS false",
               f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'")
    try:
        process.wait_for("retrying in")
        code, _ = process.terminate_and_time(DRAIN_S + EXIT_SLACK_S)
        assert code == 0 and "Traceback" not in process.text, process.text
    finally:
        pg_execute(base, f"ALTER DATABASE {name} ALLOW_CONNECTIONS true")
