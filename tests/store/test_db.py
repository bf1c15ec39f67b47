"""Opening the database from a URL and the connection discipline of store calls."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import peewee
import pytest

import store


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://h/db", "unsupported scheme 'mysql'"),
        ("sqlite://relative.db", "expected sqlite:///"),
        ("sqlite:///x.db?pool=lots", "pool='lots' is not an integer"),
        ("sqlite:///x.db?journal=off", r"unknown parameters \['journal'\]"),
        ("postgresql://u:secret@h:5432/", "no database name"),
        ("postgresql://u@h/db?pool=0", "pool must be >= 1"),
    ],
)
def test_bad_urls_are_named(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as caught:
        store.open_database(url)
    assert "secret" not in str(caught.value)


def test_calls_before_open_say_so() -> None:
    store.close_database()
    with pytest.raises(store.StoreError, match="not open"):
        store.get_pipeline("x")


def test_memory_database_is_shared_by_threads_and_removed() -> None:
    db = store.open_database("sqlite:///:memory:")
    path = db.database
    try:
        store.migrate(db)
        with ThreadPoolExecutor(max_workers=4) as pool:
            ids = list(pool.map(lambda i: store.create_pipeline(f"p{i}", "y").id, range(8)))
        assert sorted(p.id for p in store.list_pipelines(limit=100)) == sorted(ids)
        assert os.path.exists(path)
    finally:
        store.close_database()
    assert not os.path.exists(path)


def test_no_connection_is_held_between_calls(db: peewee.Database) -> None:
    pipeline = store.create_pipeline("p", "y")

    def work(i: int) -> int:
        build, _ = store.create_build(pipeline.id, workflow_yaml="s")
        store.claim_build(build.id, f"ex-{i}", 30)
        return store.get_build(build.id).number

    with ThreadPoolExecutor(max_workers=16) as pool:
        numbers = list(pool.map(work, range(64)))
    assert sorted(numbers) == list(range(1, 65))
    assert db._in_use == {}  # type: ignore[attr-defined]  # every connection went back
    limit = 8 if store.backend() == "postgresql" else 32
    assert len(db._connections) <= limit  # type: ignore[attr-defined]
