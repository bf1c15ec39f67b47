"""Pipelines and users."""

from __future__ import annotations

import peewee

from store.convert import pipeline_record
from store.db import store_call, transaction, utcnow
from store.errors import Conflict, NotFound
from store.models import Pipeline, PipelineMember, User
from store.records import PipelineRecord


def _check_name(name: str) -> None:
    if not name or not name.strip():
        raise ValueError("pipeline name must not be empty")
    if len(name) > 200:
        raise ValueError(f"pipeline name is {len(name)} characters long; the limit is 200")


@store_call
def create_pipeline(
    name: str, workflow_yaml: str, description: str = "", *, admin_id: int | None = None
) -> PipelineRecord:
    """Create a pipeline; `Conflict` when the name is taken.

    ``admin_id`` (its creator) becomes the pipeline's admin in the same transaction.
    """
    _check_name(name)
    try:
        with transaction():
            row = Pipeline.create(name=name, workflow_yaml=workflow_yaml, description=description)
            if admin_id is not None:
                PipelineMember.create(pipeline=row.id, user=admin_id, role="admin")
    except peewee.IntegrityError:
        raise Conflict(f"a pipeline named {name!r} already exists") from None
    return pipeline_record(row)


def _pipeline_row(name_or_id: str | int) -> Pipeline:
    if isinstance(name_or_id, int):
        row = Pipeline.get_or_none(Pipeline.id == name_or_id)
    else:
        row = Pipeline.get_or_none(Pipeline.name == name_or_id)
    if row is None:
        raise NotFound(f"no pipeline {name_or_id!r}")
    return row


@store_call
def update_pipeline(
    name: str, workflow_yaml: str | None = None, description: str | None = None
) -> PipelineRecord:
    """Change a pipeline's workflow and/or description (builds keep their snapshots)."""
    changes: dict[object, object] = {Pipeline.updated_at: utcnow()}
    if workflow_yaml is not None:
        changes[Pipeline.workflow_yaml] = workflow_yaml
    if description is not None:
        changes[Pipeline.description] = description
    with transaction():
        updated = Pipeline.update(changes).where(Pipeline.name == name).execute()
        if not updated:
            raise NotFound(f"no pipeline {name!r}")
        return pipeline_record(_pipeline_row(name))


@store_call
def get_pipeline(name_or_id: str | int) -> PipelineRecord:
    """A pipeline by name (str) or id (int); `NotFound` when there is none."""
    return pipeline_record(_pipeline_row(name_or_id))


@store_call
def list_pipelines(
    limit: int = 100,
    after_id: int = 0,
    *,
    member_id: int | None = None,
    include_archived: bool = True,
) -> list[PipelineRecord]:
    """Pipelines ordered by id, ``limit`` of them after ``after_id`` (keyset pagination).

    ``member_id``: only pipelines that user is a member of.
    """
    if limit < 1:
        raise ValueError(f"limit must be >= 1, got {limit}")
    query = Pipeline.select().where(Pipeline.id > after_id)
    if member_id is not None:
        query = query.join(PipelineMember).where(PipelineMember.user == member_id)
    if not include_archived:
        query = query.where(Pipeline.archived == False)  # noqa: E712
    rows = query.order_by(Pipeline.id).limit(limit)
    return [pipeline_record(row) for row in rows]


@store_call
def archive_pipeline(name: str) -> PipelineRecord:
    """Archive a pipeline: it takes no new builds; its builds and logs stay readable."""
    with transaction():
        # Idempotent: archiving an archived pipeline changes nothing.
        Pipeline.update(archived=True, updated_at=utcnow()).where(
            (Pipeline.name == name) & (Pipeline.archived == False)  # noqa: E712
        ).execute()
        return pipeline_record(_pipeline_row(name))


@store_call
def ensure_user(name: str, is_admin: bool = False) -> int:
    """The id of the user ``name``, created if missing (an existing user is not changed)."""
    if not name:
        raise ValueError("user name must not be empty")
    row = User.get_or_none(User.name == name)
    if row is not None:
        return int(row.id)
    with transaction():
        User.insert(name=name, is_admin=is_admin).on_conflict_ignore().execute()
    return int(User.get(User.name == name).id)
