"""Versioned schema migrations, applied in order and recorded in ``schema_versions``.

Add a change as the next numbered function and append it to `MIGRATIONS`; write it with
`schema_migrator(db)` (``playhouse.migrate``) so it runs on SQLite and PostgreSQL alike.
v1 creates the tables from the current models: when a later migration alters a table,
first freeze v1's definition of that table here, so a fresh database still replays the
history step by step (the migration tests fail on a fresh database until you do).
"""

from __future__ import annotations

import itertools
import logging
import threading
import zlib
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import cast

import peewee
from playhouse.migrate import PostgresqlMigrator, SchemaMigrator, SqliteMigrator
from playhouse.migrate import migrate as playhouse_migrate

from store.db import database
from store.errors import StoreError
from store.models import (
    ALL_MODELS,
    ApiToken,
    BaseModel,
    Build,
    Pipeline,
    SchemaVersion,
    User,
    UtcDateTimeField,
)

log = logging.getLogger(__name__)

Migration = Callable[[peewee.Database], None]

# Any fixed 64-bit number: every Conveyor process contends on the same one.
_ADVISORY_LOCK_KEY = zlib.crc32(b"conveyor.schema-migrations")


class _V1User(BaseModel):
    """``users`` as v1 created it (v2 added ``disabled_at``)."""

    id = peewee.AutoField()
    name = peewee.CharField(max_length=200, unique=True)
    is_admin = peewee.BooleanField(default=False)
    created_at = UtcDateTimeField()

    class Meta:
        table_name = "users"


class _V1ApiToken(BaseModel):
    """``api_tokens`` as v1 created it (v2 added ``parent_id``)."""

    id = peewee.AutoField()
    user = peewee.ForeignKeyField(_V1User, backref="tokens", on_delete="CASCADE")
    name = peewee.CharField(max_length=200)
    token_hash = peewee.CharField(max_length=128, unique=True)
    created_at = UtcDateTimeField()
    expires_at = UtcDateTimeField(null=True)
    revoked_at = UtcDateTimeField(null=True)
    last_used_at = UtcDateTimeField(null=True)

    class Meta:
        table_name = "api_tokens"


class _BuildV1(BaseModel):
    """The builds table as v1 created it (v2 added ``republish_after``)."""

    id = peewee.AutoField()
    pipeline = peewee.ForeignKeyField(Pipeline, backref="+", on_delete="RESTRICT")
    number = peewee.IntegerField()
    status = peewee.CharField(max_length=16, index=True)
    reason = peewee.TextField(default="")
    ref = peewee.CharField(max_length=500, default="")
    sha = peewee.CharField(max_length=64, default="")
    inputs = peewee.TextField(default="{}")
    request_id = peewee.CharField(max_length=200, null=True)
    triggered_by = peewee.CharField(max_length=200, default="", index=True)
    attempt = peewee.IntegerField(default=1)
    owner = peewee.CharField(max_length=200, null=True)
    lease_until = UtcDateTimeField(null=True)
    published = peewee.BooleanField(default=False)
    cancel_requested = peewee.BooleanField(default=False)
    created_at = UtcDateTimeField()
    started_at = UtcDateTimeField(null=True)
    finished_at = UtcDateTimeField(null=True)

    class Meta:
        table_name = "builds"
        indexes = (
            (("pipeline", "number"), True),
            (("pipeline", "request_id"), True),
            (("status", "lease_until"), False),
            (("status", "published", "created_at"), False),
        )


def _v1_initial_schema(db: peewee.Database) -> None:
    frozen: dict[type[BaseModel], type[BaseModel]] = {
        User: _V1User, ApiToken: _V1ApiToken, Build: _BuildV1}
    # One by one in ALL_MODELS' order (parents first): the frozen tables stand outside
    # the foreign-key graph that create_tables would sort by.
    with db.bind_ctx(list(frozen.values()), bind_refs=False, bind_backrefs=False):
        for model in ALL_MODELS:
            if model is not SchemaVersion:
                frozen.get(model, model).create_table()


def _v2_disabled_users_and_token_parents(db: peewee.Database) -> None:
    migrator = schema_migrator(db)
    # Idempotent: a schema whose version rows were lost (a partial restore) already has
    # these columns, and migrating it again must not fail.
    users = {c.name for c in db.get_columns("users")}
    tokens = {c.name for c in db.get_columns("api_tokens")}
    steps = []
    if "disabled_at" not in users:
        steps.append(migrator.add_column("users", "disabled_at", UtcDateTimeField(null=True)))
    if "parent_id" not in tokens:
        steps += [migrator.add_column("api_tokens", "parent_id", peewee.IntegerField(null=True)),
                  migrator.add_index("api_tokens", ("parent_id",), False)]
    playhouse_migrate(*steps)


def _v3_outbox_claim(db: peewee.Database) -> None:
    # Idempotent like v2: a schema whose version rows were lost has the column already.
    if "republish_after" in {c.name for c in db.get_columns("builds")}:
        return
    migrator = schema_migrator(db)
    playhouse_migrate(migrator.add_column("builds", "republish_after",
                                          UtcDateTimeField(null=True)))


MIGRATIONS: tuple[tuple[int, str, Migration], ...] = (
    (1, "users, tokens, pipelines, builds, snapshots, jobs, steps, log chunks", _v1_initial_schema),
    (2, "users can be disabled; tokens know the token that created them",
     _v2_disabled_users_and_token_parents),
    (3, "builds.republish_after: one reconciler re-publishes a build", _v3_outbox_claim),
)


LATEST_VERSION = MIGRATIONS[-1][0]
MIGRATE_HINT = "run `conveyor db migrate`"


class SchemaNotCurrent(StoreError):
    """The database's schema is missing or older than this code's migrations."""


class MigrationCancelled(StoreError):
    """Asked to stop while waiting for another process's migration."""


def schema_migrator(db: peewee.Database) -> SchemaMigrator:
    """The ``playhouse.migrate`` migrator for ``db``'s backend (for migrations v2+)."""
    if isinstance(db, peewee.PostgresqlDatabase):
        return PostgresqlMigrator(db)
    return SqliteMigrator(db)


def _resolve(db: peewee.Database | None) -> peewee.Database:
    real = db if db is not None else database.obj
    if real is None:
        raise RuntimeError("no database: call store.open_database(url) first or pass one")
    return real


def _bound(db: peewee.Database) -> AbstractContextManager[object]:
    # Rebinding models is global and not thread-safe: only for a database that is not
    # the one `open_database` bound (a tool migrating another database).
    if db is database.obj:
        return nullcontext()
    return cast(
        AbstractContextManager[object],
        db.bind_ctx(ALL_MODELS, bind_refs=False, bind_backrefs=False),
    )


def _applied(db: peewee.Database) -> set[int]:
    if not db.table_exists(SchemaVersion._meta.table_name):
        return set()
    return {row.version for row in SchemaVersion.select(SchemaVersion.version)}


def current_version(db: peewee.Database | None = None) -> int:
    """The highest applied migration number (0 for an empty database)."""
    real = _resolve(db)
    with _bound(real), real.connection_context():
        return max(_applied(real), default=0)


def schema_problem(db: peewee.Database | None = None) -> str | None:
    """Why this code cannot use the database's schema (missing or behind), or None.

    A schema ahead of the code is fine: during a rolling upgrade the previous release
    keeps running against the next one's (additive) migrations.
    """
    version = current_version(db)
    if version >= LATEST_VERSION:
        return None
    if version == 0:
        return f"the database has no Conveyor schema yet: {MIGRATE_HINT}"
    return (f"the database schema is at version {version}, this Conveyor needs "
            f"{LATEST_VERSION}: {MIGRATE_HINT}")


def require_current_schema(db: peewee.Database | None = None) -> None:
    """Raise `SchemaNotCurrent` (its message says what to run) unless the schema is current."""
    problem = schema_problem(db)
    if problem is not None:
        raise SchemaNotCurrent(problem)


def _lock(db: peewee.Database, stop: threading.Event | None) -> None:
    # Polled rather than a blocking pg_advisory_lock: a process told to stop while
    # another one migrates must not wait for that migration to end.
    wait = stop or threading.Event()
    for attempt in itertools.count():
        cursor = db.execute_sql(  # type: ignore[no-untyped-call]
            "SELECT pg_try_advisory_lock(%s)", (_ADVISORY_LOCK_KEY,))
        if cursor.fetchone()[0]:
            return
        if attempt == 0:
            log.info("waiting for another process's schema migration to finish")
        if wait.wait(0.2):
            raise MigrationCancelled("stopped while waiting for another process's migration")


def migrate(db: peewee.Database | None = None, *,
            stop: threading.Event | None = None) -> list[int]:
    """Apply the pending migrations in order, each in its own transaction.

    Returns the versions applied now (empty when the schema is current). Two processes
    migrating at once are serialised: by an advisory lock on PostgreSQL, by SQLite's
    write lock (each step re-checks inside its transaction) on SQLite. Setting ``stop``
    gives up waiting for the lock (`MigrationCancelled`).
    """
    real = _resolve(db)
    postgres = isinstance(real, peewee.PostgresqlDatabase)
    done: list[int] = []
    with _bound(real), real.connection_context():
        if postgres:
            _lock(real, stop)
        try:
            with real.atomic():
                real.create_tables([SchemaVersion])
            for version, title, apply in MIGRATIONS:
                with real.atomic():
                    if SchemaVersion.get_or_none(SchemaVersion.version == version):
                        continue
                    log.info("applying schema migration %d: %s", version, title)
                    apply(real)
                    SchemaVersion.create(version=version)
                done.append(version)
        finally:
            if postgres:
                real.execute_sql(  # type: ignore[no-untyped-call]
                    "SELECT pg_advisory_unlock(%s)", (_ADVISORY_LOCK_KEY,)
                )
    return done
