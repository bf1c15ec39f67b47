"""Peewee models of the Conveyor schema, bound to `store.db.database`.

Only the store modules touch these; everything outside gets `store.records` values.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import peewee as pw

from store.db import database, utcnow

if TYPE_CHECKING:
    _DateTimeBase = pw.DateTimeField[Any]  # generic only in peewee's stubs
else:
    _DateTimeBase = pw.DateTimeField


class UtcDateTimeField(_DateTimeBase):
    """Stores naive UTC (portable across SQLite and PostgreSQL), returns aware UTC."""

    def db_value(self, value: Any) -> Any:
        if isinstance(value, datetime) and value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return super().db_value(value)  # type: ignore[no-untyped-call]

    def python_value(self, value: Any) -> Any:
        value = super().python_value(value)  # type: ignore[no-untyped-call]
        if isinstance(value, datetime) and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value


class BaseModel(pw.Model):
    class Meta:
        database = database
        legacy_table_names = False


class User(BaseModel):
    id = pw.AutoField()
    name = pw.CharField(max_length=200, unique=True)
    is_admin = pw.BooleanField(default=False)
    created_at = UtcDateTimeField(default=utcnow)
    # Set by an instance admin: every token of the user stops working (migration v2).
    disabled_at = UtcDateTimeField(null=True)

    class Meta:
        table_name = "users"


class ApiToken(BaseModel):
    id = pw.AutoField()
    user = pw.ForeignKeyField(User, backref="tokens", on_delete="CASCADE")
    user_id: int
    name = pw.CharField(max_length=200)
    token_hash = pw.CharField(max_length=128, unique=True)
    created_at = UtcDateTimeField(default=utcnow)
    expires_at = UtcDateTimeField(null=True)
    revoked_at = UtcDateTimeField(null=True)
    last_used_at = UtcDateTimeField(null=True)
    # The token that created this one (None: made by `admin bootstrap`). A token expires
    # no later than its parent and is revoked with it (migration v2).
    parent_id = pw.IntegerField(null=True, index=True)

    class Meta:
        table_name = "api_tokens"


class Pipeline(BaseModel):
    id = pw.AutoField()
    name = pw.CharField(max_length=200, unique=True)
    description = pw.TextField(default="")
    workflow_yaml = pw.TextField()
    archived = pw.BooleanField(default=False)
    created_at = UtcDateTimeField(default=utcnow)
    updated_at = UtcDateTimeField(default=utcnow)

    class Meta:
        table_name = "pipelines"


class PipelineMember(BaseModel):
    id = pw.AutoField()
    pipeline = pw.ForeignKeyField(Pipeline, backref="members", on_delete="CASCADE")
    user = pw.ForeignKeyField(User, backref="memberships", on_delete="CASCADE")
    user_id: int
    role = pw.CharField(
        max_length=16, constraints=[pw.Check("role IN ('viewer', 'developer', 'admin')")]
    )

    class Meta:
        table_name = "pipeline_members"
        indexes = ((("pipeline", "user"), True),)


class Build(BaseModel):
    id = pw.AutoField()
    pipeline = pw.ForeignKeyField(Pipeline, backref="builds", on_delete="RESTRICT")
    pipeline_id: int
    number = pw.IntegerField()
    status = pw.CharField(max_length=16, index=True)
    reason = pw.TextField(default="")
    ref = pw.CharField(max_length=500, default="")
    sha = pw.CharField(max_length=64, default="")
    inputs = pw.TextField(default="{}")  # JSON object
    request_id = pw.CharField(max_length=200, null=True)
    triggered_by = pw.CharField(max_length=200, default="", index=True)
    attempt = pw.IntegerField(default=1)
    owner = pw.CharField(max_length=200, null=True)
    lease_until = UtcDateTimeField(null=True)
    published = pw.BooleanField(default=False)
    cancel_requested = pw.BooleanField(default=False)
    created_at = UtcDateTimeField(default=utcnow)
    started_at = UtcDateTimeField(null=True)
    finished_at = UtcDateTimeField(null=True)
    # Outbox: an unpublished build's re-publishing is claimed by one reconciler until then.
    republish_after = UtcDateTimeField(null=True)

    class Meta:
        table_name = "builds"
        indexes = (
            (("pipeline", "number"), True),
            # NULLs are distinct in a unique index on both backends: only set ids collide.
            (("pipeline", "request_id"), True),
            (("status", "lease_until"), False),
            (("status", "published", "created_at"), False),
        )


class BuildSnapshot(BaseModel):
    build = pw.ForeignKeyField(Build, primary_key=True, on_delete="CASCADE")
    workflow_yaml = pw.TextField()

    class Meta:
        table_name = "build_snapshots"


class Job(BaseModel):
    id = pw.AutoField()
    build = pw.ForeignKeyField(Build, backref="jobs", on_delete="CASCADE")
    build_id: int
    key = pw.CharField(max_length=500)
    job_id = pw.CharField(max_length=200)
    name = pw.CharField(max_length=500)
    status = pw.CharField(max_length=16)
    reason = pw.TextField(default="")
    attempt = pw.IntegerField(default=1)
    exit_code = pw.IntegerField(null=True)
    outputs = pw.TextField(default="{}")  # JSON object of strings
    matrix = pw.TextField(default="{}")  # JSON object
    needs = pw.TextField(default="[]")  # JSON list of job ids
    created_at = UtcDateTimeField(default=utcnow)
    queued_at = UtcDateTimeField(null=True)
    started_at = UtcDateTimeField(null=True)
    finished_at = UtcDateTimeField(null=True)

    class Meta:
        table_name = "jobs"
        indexes = ((("build", "key", "attempt"), True),)


class Step(BaseModel):
    id = pw.AutoField()
    job = pw.ForeignKeyField(Job, backref="steps", on_delete="CASCADE")
    job_id: int
    # Not `index`: that name is peewee's Model.index() classmethod.
    idx = pw.IntegerField(column_name="index")
    name = pw.CharField(max_length=500)
    status = pw.CharField(max_length=16)
    reason = pw.TextField(default="")
    exit_code = pw.IntegerField(null=True)
    started_at = UtcDateTimeField(null=True)
    finished_at = UtcDateTimeField(null=True)

    class Meta:
        table_name = "steps"
        indexes = ((("job", "idx"), True),)


class LogChunk(BaseModel):
    """One batch of consecutive log lines of a job: lines first_line..first_line+count-1."""

    id = pw.BigAutoField()
    job = pw.ForeignKeyField(Job, backref="log_chunks", on_delete="CASCADE", index=False)
    first_line = pw.IntegerField()
    line_count = pw.IntegerField()
    content = pw.TextField()  # the lines joined by "\n"
    created_at = UtcDateTimeField(default=utcnow)

    class Meta:
        table_name = "log_chunks"
        # Unique: a chunk written twice (a retried commit, a re-attached log follower)
        # is ignored instead of duplicating lines.
        indexes = ((("job", "first_line"), True),)


class SchemaVersion(BaseModel):
    version = pw.IntegerField(primary_key=True)
    applied_at = UtcDateTimeField(default=utcnow)

    class Meta:
        table_name = "schema_versions"


ALL_MODELS: tuple[type[BaseModel], ...] = (
    User,
    ApiToken,
    Pipeline,
    PipelineMember,
    Build,
    BuildSnapshot,
    Job,
    Step,
    LogChunk,
    SchemaVersion,
)
