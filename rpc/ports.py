"""What the servicers need from their collaborators, as protocols (injected, fakeable).

The ``store`` module itself satisfies ``StoreApi``; ``store.changes.ChangeFeed``
satisfies ``ChangeFeedApi``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from store.records import BuildRecord, JobRecord, LogLine, PipelineRecord, StepRecord
from workflow.states import BuildStatus


class StoreApi(Protocol):
    def create_pipeline(
        self, name: str, workflow_yaml: str, description: str = ...
    ) -> PipelineRecord: ...

    def update_pipeline(
        self, name: str, workflow_yaml: str | None = ..., description: str | None = ...
    ) -> PipelineRecord: ...

    def get_pipeline(self, name_or_id: str | int) -> PipelineRecord: ...

    def list_pipelines(self, limit: int, after_id: int = ...) -> list[PipelineRecord]: ...

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
    ) -> list[BuildRecord]: ...

    def mark_published(self, build_id: int) -> None: ...

    def request_cancel(self, build_id: int) -> BuildRecord: ...

    def list_jobs(self, build_id: int, attempt: int | None = ...) -> list[JobRecord]: ...

    def list_steps(self, job_row_ids: Sequence[int]) -> dict[int, list[StepRecord]]: ...

    def read_logs(
        self, job_row_ids: Sequence[int], from_line: int = ..., limit: int = ...
    ) -> list[LogLine]: ...

    def get_snapshot(self, build_id: int) -> str: ...


class ChangeFeedApi(Protocol):
    def publish(self, build_id: int) -> None: ...

    def wait(self, build_id: int, since: int, timeout: float) -> int: ...

    def version(self, build_id: int) -> int: ...
