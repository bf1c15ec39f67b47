"""What the servicers need from their collaborators, as protocols (injected, fakeable).

The ``store`` module itself satisfies ``StoreApi``; ``store.changes.ChangeFeed``
satisfies ``ChangeFeedApi``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from store.members import MemberRecord
from store.records import BuildRecord, JobRecord, LogLine, PipelineRecord, StepRecord
from store.users import TokenRecord, UserRecord
from workflow.states import BuildStatus


class StoreApi(Protocol):
    def create_pipeline(
        self, name: str, workflow_yaml: str, description: str = ..., *, admin_id: int | None = ...
    ) -> PipelineRecord: ...

    def update_pipeline(
        self, name: str, workflow_yaml: str | None = ..., description: str | None = ...
    ) -> PipelineRecord: ...

    def get_pipeline(self, name_or_id: str | int) -> PipelineRecord: ...

    def list_pipelines(
        self,
        limit: int,
        after_id: int = ...,
        *,
        member_id: int | None = ...,
        include_archived: bool = ...,
    ) -> list[PipelineRecord]: ...

    def archive_pipeline(self, name: str) -> PipelineRecord: ...

    def get_user(self, name_or_id: str | int) -> UserRecord: ...

    def set_member(self, pipeline_id: int, user_id: int, role: str) -> MemberRecord: ...

    def remove_member(self, pipeline_id: int, user_id: int) -> bool: ...

    def member_role(self, pipeline_id: int, user_id: int) -> str | None: ...

    def list_members(self, pipeline_id: int) -> list[MemberRecord]: ...

    def create_build(
        self,
        pipeline_id: int,
        *,
        ref: str,
        sha: str,
        inputs: Mapping[str, Any],
        request_id: str | None,
        triggered_by: str,
        workflow_yaml: str,
        max_queued: int | None = ...,
    ) -> tuple[BuildRecord, bool]: ...

    def get_build(self, build_id: int) -> BuildRecord: ...

    def list_builds(
        self,
        *,
        pipeline_id: int | None = ...,
        status: BuildStatus | None = ...,
        triggered_by: str | None = ...,
        limit: int = ...,
        before_id: int | None = ...,
        member_id: int | None = ...,
    ) -> list[BuildRecord]: ...

    def rerun_build(
        self, build_id: int, *, max_queued: int | None = ...
    ) -> tuple[BuildRecord, list[str]]: ...

    def mark_published(self, build_id: int) -> None: ...

    def request_cancel(self, build_id: int) -> BuildRecord: ...

    def list_jobs(self, build_id: int, attempt: int | None = ...) -> list[JobRecord]: ...

    def list_steps(self, job_row_ids: Sequence[int]) -> dict[int, list[StepRecord]]: ...

    def read_logs(
        self, job_row_ids: Sequence[int], from_line: int = ..., limit: int = ...,
        max_bytes: int | None = ...,
    ) -> list[LogLine]: ...

    def get_snapshot(self, build_id: int) -> str: ...


class ChangeFeedApi(Protocol):
    def publish(self, build_id: int) -> None: ...

    def wait(self, build_id: int, since: int, timeout: float) -> int: ...

    def version(self, build_id: int) -> int: ...


class IdentityStoreApi(Protocol):
    """What IdentityService needs of the store (the ``store`` module satisfies it)."""

    def get_user(self, name_or_id: str | int) -> UserRecord: ...

    def create_user(self, name: str, *, is_admin: bool = ...) -> UserRecord: ...

    def create_token(
        self, user_id: int, name: str, token_hash: str, *, expires_at: Any = ...,
        parent_id: int | None = ...,
    ) -> TokenRecord: ...

    def list_tokens(self, user_id: int) -> list[TokenRecord]: ...

    def get_token(self, token_id: int) -> TokenRecord: ...

    def revoke_token_tree(self, token_id: int) -> list[TokenRecord]: ...

    def set_user_disabled(self, name: str, disabled: bool) -> UserRecord: ...
