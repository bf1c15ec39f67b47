"""Schema migrations: applied once, recorded, safe to run concurrently."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import peewee

import store
from store.migrations import MIGRATIONS
from store.models import ALL_MODELS


def test_migrate_applies_every_version_once(empty_db: peewee.Database) -> None:
    assert store.current_version(empty_db) == 0
    latest = MIGRATIONS[-1][0]
    assert store.migrate(empty_db) == [number for number, _, _ in MIGRATIONS]
    assert store.current_version(empty_db) == latest
    assert store.migrate(empty_db) == []
    assert store.current_version(empty_db) == latest


def test_migrated_schema_matches_the_models(empty_db: peewee.Database) -> None:
    store.migrate(empty_db)
    with empty_db.connection_context():
        for model in ALL_MODELS:
            table = model._meta.table_name
            columns = {column.name for column in empty_db.get_columns(table)}
            expected = {field.column_name for field in model._meta.sorted_fields}
            assert columns == expected, table


def test_two_migrators_at_once_apply_each_version_once(empty_db: peewee.Database) -> None:
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(lambda _: store.migrate(empty_db), range(2)))
    applied = sorted(version for result in results for version in result)
    assert applied == [number for number, _, _ in MIGRATIONS]
    assert store.current_version(empty_db) == MIGRATIONS[-1][0]
