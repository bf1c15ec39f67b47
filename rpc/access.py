"""Authorisation on pipelines: the caller's role decides, and invisible means NOT_FOUND.

A pipeline the caller is not a member of answers exactly like a pipeline that does not
exist (same code, same message), so names of private pipelines do not leak. A member
without the right role gets PERMISSION_DENIED saying which role is needed.
"""

from __future__ import annotations

from typing import Protocol

from rpc.auth import Caller
from rpc.errors import PermissionDenied
from rpc.permissions import Action, allows, denial
from store.errors import NotFound
from store.records import BuildRecord, PipelineRecord


class AccessStore(Protocol):
    def get_pipeline(self, name_or_id: str | int) -> PipelineRecord: ...

    def get_build(self, build_id: int) -> BuildRecord: ...

    def member_role(self, pipeline_id: int, user_id: int) -> str | None: ...


class Access:
    def __init__(self, store_api: AccessStore) -> None:
        self._store = store_api

    def pipeline(self, caller: Caller, name: str, action: Action) -> PipelineRecord:
        """The pipeline ``name`` if ``caller`` may do ``action`` on it."""
        record = self._store.get_pipeline(name)
        self._check(caller, record, action, NotFound(f"no pipeline {name!r}"))
        return record

    def build(self, caller: Caller, build_id: int, action: Action) -> BuildRecord:
        """The build if ``caller`` may do ``action`` on its pipeline."""
        record = self._store.get_build(build_id)
        hidden = NotFound(f"no build with id {build_id}")
        self._check(caller, self._store.get_pipeline(record.pipeline_id), action, hidden)
        return record

    def _check(
        self, caller: Caller, pipeline: PipelineRecord, action: Action, hidden: NotFound
    ) -> None:
        if caller.is_admin:
            return
        role = self._store.member_role(pipeline.id, caller.user_id)
        if role is None:
            raise hidden
        if not allows(role, action):
            raise PermissionDenied(denial(caller.name, role, action, pipeline.name))
