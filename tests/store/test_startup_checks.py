"""What a process checks as it opens the database: the connection (permanent failures at
once, transient ones retried until stopped), the schema's version, the migration lock;
and store calls that stop retrying when the process shuts down."""

from __future__ import annotations

import socket
import threading
from concurrent.futures import ThreadPoolExecutor

import peewee
import pytest

import store
from store.migrations import _ADVISORY_LOCK_KEY, LATEST_VERSION
from store.models import SchemaVersion
from tests.cli.processes import admin_connection
from tests.cli.processes import fresh_pg as fresh_pg
from tests.services import require_postgres


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


@pytest.fixture
def unreachable() -> str:
    return f"postgresql://postgres@127.0.0.1:{_closed_port()}/conveyor"


def test_a_missing_database_fails_at_once_and_is_named() -> None:
    base = require_postgres()
    store.open_database(base.rsplit("/", 1)[0] + "/conveyor_no_such_db", retry_s=60)
    retries: list[store.RetryEvent] = []
    remove = store.add_retry_listener(retries.append)
    try:
        with pytest.raises(store.StoreUnavailable) as caught:
            store.check_connection()
        with pytest.raises(store.StoreError, match="does not exist"):
            store.get_pipeline("p")  # a store call does not retry it for a minute either
    finally:
        remove()
        store.close_database()
    assert str(caught.value) == (
        "cannot use the database postgresql://postgres@127.0.0.1:5432/conveyor_no_such_db: "
        'FATAL: database "conveyor_no_such_db" does not exist')
    assert retries == []


def test_waiting_for_an_unreachable_database_ends_when_stopped(unreachable: str) -> None:
    store.open_database(unreachable, retry_s=600)
    stop = threading.Event()
    retried = threading.Event()
    remove = store.add_retry_listener(lambda _: retried.set())
    try:
        with ThreadPoolExecutor(1) as pool:
            waiting = pool.submit(store.check_connection, stop)
            assert retried.wait(30)  # it is waiting, for up to ten minutes
            stop.set()
            with pytest.raises(store.StoreUnavailable, match="Connection refused"):
                waiting.result(timeout=30)
    finally:
        remove()
        store.close_database()


def test_interrupted_store_calls_stop_retrying(unreachable: str) -> None:
    store.open_database(unreachable, retry_s=600)
    retried = threading.Event()
    remove = store.add_retry_listener(lambda _: retried.set())
    try:
        with ThreadPoolExecutor(1) as pool:
            call = pool.submit(store.get_pipeline, "p")
            assert retried.wait(30)
            store.interrupt_retries()
            with pytest.raises(store.StoreUnavailable, match="database unavailable"):
                call.result(timeout=30)
        store.open_database(unreachable, retry_s=600)  # re-armed: retries again
        retried.clear()
        with ThreadPoolExecutor(1) as pool:
            call = pool.submit(store.get_pipeline, "p")
            assert retried.wait(30)
            store.interrupt_retries()
            with pytest.raises(store.StoreUnavailable):
                call.result(timeout=30)
    finally:
        remove()
        store.close_database()


def test_the_schema_must_be_current(empty_db: peewee.Database) -> None:
    assert store.schema_problem(empty_db) == (
        "the database has no Conveyor schema yet: run `conveyor db migrate`")
    with pytest.raises(store.SchemaNotCurrent, match="conveyor db migrate"):
        store.require_current_schema(empty_db)
    store.migrate(empty_db)
    assert store.schema_problem(empty_db) is None
    store.require_current_schema(empty_db)
    with empty_db.connection_context():
        SchemaVersion.create(version=LATEST_VERSION + 1)
    assert store.schema_problem(empty_db) is None  # ahead: a newer release migrated


def test_waiting_for_the_migration_lock_ends_when_stopped(fresh_pg: str) -> None:
    db = store.open_database(fresh_pg)
    holder = admin_connection(fresh_pg)  # stands for another process migrating
    try:
        with holder.cursor() as cur:
            cur.execute("SELECT pg_advisory_lock(%s)", (_ADVISORY_LOCK_KEY,))
        stop = threading.Event()
        with ThreadPoolExecutor(1) as pool:
            migrating = pool.submit(store.migrate, db, stop=stop)
            stop.set()
            with pytest.raises(store.MigrationCancelled):
                migrating.result(timeout=30)
        assert store.current_version(db) == 0
    finally:
        holder.close()
        store.close_database()
