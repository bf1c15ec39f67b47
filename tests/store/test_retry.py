"""Transient database failures are retried inside store calls, for a bounded time.

Failures are real: a second SQLite connection holding the write lock, a PostgreSQL
database whose sessions are terminated and which refuses new connections.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg2  # type: ignore[import-untyped]
import pytest

import store
from store import RetryEvent
from store.db import store_call


@contextmanager
def _listening(listener: object) -> Iterator[None]:
    remove = store.add_retry_listener(listener)  # type: ignore[arg-type]
    try:
        yield
    finally:
        remove()


def test_sqlite_write_waits_out_a_held_write_lock(tmp_path: Path) -> None:
    path = tmp_path / "locked.db"
    db = store.open_database(f"sqlite:///{path}?busy_timeout=20", retry_s=10)
    blocker = sqlite3.connect(path, isolation_level=None)
    try:
        store.migrate(db)
        blocker.execute("BEGIN IMMEDIATE")
        events: list[RetryEvent] = []

        def on_retry(event: RetryEvent) -> None:
            events.append(event)
            if len(events) == 2:
                blocker.execute("COMMIT")

        with _listening(on_retry):
            created = store.create_pipeline("after-the-lock", "y")
        assert [e.attempt for e in events] == [1, 2]
        assert all("locked" in str(e.error) for e in events)
        assert store.get_pipeline("after-the-lock") == created
    finally:
        blocker.close()
        store.close_database()


def test_sqlite_gives_up_after_the_budget(tmp_path: Path) -> None:
    path = tmp_path / "locked.db"
    db = store.open_database(f"sqlite:///{path}?busy_timeout=20", retry_s=0.3)
    blocker = sqlite3.connect(path, isolation_level=None)
    try:
        store.migrate(db)
        blocker.execute("BEGIN IMMEDIATE")
        with pytest.raises(store.StoreUnavailable, match=r"create_pipeline.*locked"):
            store.create_pipeline("never", "y")
        blocker.execute("ROLLBACK")
    finally:
        blocker.close()
        store.close_database()


class _Outage:
    """Takes one PostgreSQL database down (and up) from an admin session."""

    def __init__(self, url: str) -> None:
        self.url = url
        parts = urlsplit(url)
        self.name = parts.path.lstrip("/")
        self.admin = psycopg2.connect(urlunsplit(parts._replace(path="/postgres")))
        self.admin.autocommit = True

    def start(self) -> None:
        with self.admin.cursor() as cur:
            cur.execute(f"ALTER DATABASE {self.name} ALLOW_CONNECTIONS false")
            # The timeout makes it wait until each backend is really gone.
            cur.execute(
                "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()",
                (self.name,),
            )

    def end(self) -> None:
        with self.admin.cursor() as cur:
            cur.execute(f"ALTER DATABASE {self.name} ALLOW_CONNECTIONS true")

    def close(self) -> None:
        self.end()
        self.admin.close()


@pytest.fixture
def outage(pg_url: str) -> Iterator[_Outage]:
    conn = psycopg2.connect(pg_url)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    conn.close()
    db = store.open_database(pg_url, retry_s=20)
    store.migrate(db)
    down = _Outage(pg_url)
    try:
        yield down
    finally:
        down.close()
        store.close_database()


def test_postgres_outage_is_survived(outage: _Outage) -> None:
    created = store.create_pipeline("survivor", "y")  # the pool now holds a live connection
    outage.start()
    events: list[RetryEvent] = []

    def on_retry(event: RetryEvent) -> None:
        events.append(event)
        if len(events) == 3:
            outage.end()

    with _listening(on_retry):
        assert store.get_pipeline("survivor") == created
    assert [e.attempt for e in events] == [1, 2, 3]
    # The pool notices the terminated session on checkout and reconnects: refused.
    assert all("not currently accepting connections" in str(e.error) for e in events)


def test_postgres_session_killed_mid_call_is_replaced(outage: _Outage) -> None:
    calls: list[int] = []

    @store_call
    def killed_once() -> int:
        calls.append(1)
        if len(calls) == 1:
            store.database.execute_sql("SELECT pg_terminate_backend(pg_backend_pid())")
        return int(store.database.execute_sql("SELECT 41 + 1").fetchone()[0])

    events: list[RetryEvent] = []
    with _listening(events.append):
        assert killed_once() == 42
    assert len(calls) == 2 and len(events) == 1
    assert "terminat" in str(events[0].error)


def test_postgres_outage_longer_than_the_budget_is_unavailable(outage: _Outage) -> None:
    store.create_pipeline("x", "y")
    store.open_database(outage.url, retry_s=0.3)
    outage.start()
    with pytest.raises(store.StoreUnavailable, match="get_pipeline: database unavailable"):
        store.get_pipeline("x")
    outage.end()
    assert store.get_pipeline("x").name == "x"
