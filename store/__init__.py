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
from store.errors import (
    Conflict,
    InvalidState,
    LimitReached,
    NotFound,
    StoreError,
    StoreUnavailable,
)
from store.jobs import create_jobs, list_jobs, list_steps, update_job, upsert_step
from store.leases import claim_build, expired_builds, release_build, renew_leases
from store.logs import LogWriteMethod, append_log_chunks, log_line_count, read_logs
from store.members import MemberRecord, list_members, member_role, remove_member, set_member
from store.migrations import current_version, migrate
from store.pipelines import (
    archive_pipeline,
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
from store.rerun import rerun_build
from store.users import (
    TokenRecord,
    UserRecord,
    admin_exists,
    bootstrap_admin,
    create_token,
    create_user,
    find_token,
    get_token,
    get_user,
    list_tokens,
    revoke_token,
    touch_token,
)

__all__ = [
    "CANCELLED_BEFORE_START",
    "BuildRecord",
    "ChangeFeed",
    "Conflict",
    "InvalidState",
    "JobInit",
    "JobRecord",
    "LimitReached",
    "LogChunkInit",
    "LogLine",
    "LogWriteMethod",
    "MemberRecord",
    "NotFound",
    "PipelineRecord",
    "RetryEvent",
    "StepRecord",
    "StoreError",
    "StoreUnavailable",
    "TokenRecord",
    "UserRecord",
    "add_retry_listener",
    "admin_exists",
    "append_log_chunks",
    "archive_pipeline",
    "backend",
    "bootstrap_admin",
    "claim_build",
    "close_database",
    "create_build",
    "create_jobs",
    "create_pipeline",
    "create_token",
    "create_user",
    "current_version",
    "database",
    "ensure_user",
    "expired_builds",
    "find_token",
    "finish_build",
    "get_build",
    "get_pipeline",
    "get_snapshot",
    "get_token",
    "get_user",
    "list_builds",
    "list_jobs",
    "list_members",
    "list_pipelines",
    "list_steps",
    "list_tokens",
    "log_line_count",
    "mark_published",
    "member_role",
    "migrate",
    "open_database",
    "read_logs",
    "release_build",
    "remove_member",
    "renew_leases",
    "request_cancel",
    "rerun_build",
    "revoke_token",
    "set_member",
    "touch_token",
    "unpublished_builds",
    "update_job",
    "update_pipeline",
    "upsert_step",
    "utcnow",
]
