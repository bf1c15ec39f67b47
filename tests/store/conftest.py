"""Every store test runs on SQLite and on PostgreSQL (see tests/databases.py)."""

from __future__ import annotations

from collections.abc import Iterator

import peewee
import pytest

import store
from tests.databases import db_url, pg_url

__all__ = ["db_url", "pg_url"]


@pytest.fixture
def empty_db(db_url: str) -> Iterator[peewee.Database]:
    """The store opened on an empty database (no schema yet)."""
    db = store.open_database(db_url, retry_s=5.0)
    yield db
    store.close_database()


@pytest.fixture
def db(empty_db: peewee.Database) -> peewee.Database:
    """The store opened on a migrated, empty database."""
    store.migrate(empty_db)
    return empty_db


@pytest.fixture
def pipeline(db: peewee.Database) -> store.PipelineRecord:
    return store.create_pipeline("demo", "jobs: {}\n")
