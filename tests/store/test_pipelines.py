"""Pipelines and users."""

from __future__ import annotations

import peewee
import pytest

import store


def test_create_get_update_list(db: peewee.Database) -> None:
    created = store.create_pipeline("web", "jobs: {a: 1}\n", description="the site")
    assert created.name == "web" and created.description == "the site"
    assert created.created_at is not None and created.created_at.tzinfo is not None
    assert store.get_pipeline("web") == created
    assert store.get_pipeline(created.id) == created

    updated = store.update_pipeline("web", workflow_yaml="jobs: {b: 2}\n")
    assert updated.workflow_yaml == "jobs: {b: 2}\n"
    assert updated.description == "the site"
    assert updated.updated_at is not None and updated.created_at is not None
    assert updated.updated_at >= updated.created_at

    others = [store.create_pipeline(f"p{i}", "y") for i in range(4)]
    first = store.list_pipelines(limit=3)
    assert [p.name for p in first] == ["web", "p0", "p1"]
    rest = store.list_pipelines(limit=3, after_id=first[-1].id)
    assert [p.id for p in rest] == [p.id for p in others[2:]]


def test_duplicate_name_is_a_conflict(db: peewee.Database) -> None:
    store.create_pipeline("web", "y")
    with pytest.raises(store.Conflict, match="'web' already exists"):
        store.create_pipeline("web", "other")


def test_missing_pipeline_is_not_found(db: peewee.Database) -> None:
    with pytest.raises(store.NotFound, match="nope"):
        store.get_pipeline("nope")
    with pytest.raises(store.NotFound):
        store.get_pipeline(12345)
    with pytest.raises(store.NotFound):
        store.update_pipeline("nope", description="x")


def test_ensure_user_is_idempotent(db: peewee.Database) -> None:
    alice = store.ensure_user("alice", is_admin=True)
    assert store.ensure_user("alice") == alice
    assert store.ensure_user("bob") != alice
