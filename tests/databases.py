"""Database fixtures shared by the store and engine suites: SQLite and PostgreSQL alike.

PostgreSQL gets a database of its own per test session, emptied before each test.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg2  # type: ignore[import-untyped]
import pytest

import store
from tests.services import require_postgres


def _admin(url: str) -> psycopg2.extensions.connection:
    conn = psycopg2.connect(url)
    conn.autocommit = True
    return conn


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """URL of a fresh PostgreSQL database owned by this test session."""
    base = require_postgres()
    name = f"conveyor_test_{os.getpid()}"
    admin = _admin(base)
    try:
        with admin.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS {name}")
            cur.execute(f"CREATE DATABASE {name}")
        yield urlunsplit(urlsplit(base)._replace(path=f"/{name}"))
        store.close_database()
        with admin.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    finally:
        admin.close()


def _reset_postgres(url: str) -> None:
    conn = _admin(url)
    try:
        with conn.cursor() as cur:
            cur.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    finally:
        conn.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database's URL, one per backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'conveyor.db'}"
    url: str = request.getfixturevalue("pg_url")
    _reset_postgres(url)
    return url
