"""Persistence through peewee on SQLite (embedded) and PostgreSQL (production).

Every function here checks a pooled connection out for its own work only, retries
transient database failures for a bounded time, and returns plain `store.records`
values; failures surface as `StoreError` (`NotFound`, `Conflict`, `StoreUnavailable`).
"""

from store.builds import (
    CANCELLED_BEFORE_START,
    create_build,
    finish_build,
    get_build,
    get_snapshot,
    list_builds,
    mark_published,
    request_cancel,
    unpublished_builds,
)
from store.changes import ChangeFeed
from store.db import (
    RetryEvent,
    add_retry_listener,
    backend,
    close_database,
    database,
    open_database,
    utcnow,
)
from store.errors import Conflict, NotFound, StoreError, StoreUnavailable
from store.jobs import create_jobs, list_jobs, list_steps, update_job, upsert_step
from store.leases import claim_build, expired_builds, release_build, renew_leases
from store.logs import LogWriteMethod, append_log_chunks, log_line_count, read_logs
from store.migrations import current_version, migrate
from store.pipelines import (
    create_pipeline,
    ensure_user,
    get_pipeline,
    list_pipelines,
    update_pipeline,
)
from store.records import (
    BuildRecord,
    JobInit,
    JobRecord,
    LogChunkInit,
    LogLine,
    PipelineRecord,
    StepRecord,
)

__all__ = [
    "CANCELLED_BEFORE_START",
    "BuildRecord",
    "ChangeFeed",
    "Conflict",
    "JobInit",
    "JobRecord",
    "LogChunkInit",
    "LogLine",
    "LogWriteMethod",
    "NotFound",
    "PipelineRecord",
    "RetryEvent",
    "StepRecord",
    "StoreError",
    "StoreUnavailable",
    "add_retry_listener",
    "append_log_chunks",
    "backend",
    "claim_build",
    "close_database",
    "create_build",
    "create_jobs",
    "create_pipeline",
    "current_version",
    "database",
    "ensure_user",
    "expired_builds",
    "finish_build",
    "get_build",
    "get_pipeline",
    "get_snapshot",
    "list_builds",
    "list_jobs",
    "list_pipelines",
    "list_steps",
    "log_line_count",
    "mark_published",
    "migrate",
    "open_database",
    "read_logs",
    "release_build",
    "renew_leases",
    "request_cancel",
    "unpublished_builds",
    "update_job",
    "update_pipeline",
    "upsert_step",
    "utcnow",
]
