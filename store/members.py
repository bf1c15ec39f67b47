"""Pipeline members and their roles (viewer, developer, admin)."""

from __future__ import annotations

from dataclasses import dataclass

from store.db import store_call, transaction
from store.errors import InvalidState, NotFound
from store.models import Pipeline, PipelineMember, User

ROLES = ("viewer", "developer", "admin")


@dataclass(frozen=True)
class MemberRecord:
    pipeline_id: int
    user_id: int
    user_name: str
    role: str


def _check_role(role: str) -> None:
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}, got {role!r}")


@store_call
def set_member(pipeline_id: int, user_id: int, role: str) -> MemberRecord:
    """Give ``user_id`` ``role`` on the pipeline (adds, or changes an existing role).

    Demoting the pipeline's last admin is an `InvalidState`: nobody could manage it.
    """
    _check_role(role)
    with transaction():
        if Pipeline.get_or_none(Pipeline.id == pipeline_id) is None:
            raise NotFound(f"no pipeline with id {pipeline_id}")
        user = User.get_or_none(User.id == user_id)
        if user is None:
            raise NotFound(f"no user with id {user_id}")
        if role != "admin":
            _keep_an_admin(pipeline_id, user_id, f"make {user.name!r} a {role}")
        PipelineMember.insert(pipeline=pipeline_id, user=user_id, role=role).on_conflict(
            conflict_target=[PipelineMember.pipeline, PipelineMember.user],
            update={PipelineMember.role: role},
        ).execute()
    return MemberRecord(pipeline_id, user_id, user.name, role)


@store_call
def remove_member(pipeline_id: int, user_id: int) -> bool:
    """Remove a member; False when they were not one. The last admin stays."""
    with transaction():
        user = User.get_or_none(User.id == user_id)
        name = user.name if user is not None else str(user_id)
        _keep_an_admin(pipeline_id, user_id, f"remove {name!r}")
        removed = (
            PipelineMember.delete()
            .where((PipelineMember.pipeline == pipeline_id) & (PipelineMember.user == user_id))
            .execute()
        )
    return bool(removed)


def _keep_an_admin(pipeline_id: int, user_id: int, what: str) -> None:
    admins = [
        row.user_id
        for row in PipelineMember.select(PipelineMember.user).where(
            (PipelineMember.pipeline == pipeline_id) & (PipelineMember.role == "admin")
        )
    ]
    if admins == [user_id]:
        raise InvalidState(
            f"cannot {what}: they are the pipeline's only admin; make someone else admin first"
        )


@store_call
def member_role(pipeline_id: int, user_id: int) -> str | None:
    """The user's role on the pipeline, or None when they are not a member."""
    row = PipelineMember.get_or_none(
        (PipelineMember.pipeline == pipeline_id) & (PipelineMember.user == user_id)
    )
    return None if row is None else str(row.role)


@store_call
def list_members(pipeline_id: int) -> list[MemberRecord]:
    """The pipeline's members, by user name."""
    rows = (
        PipelineMember.select(PipelineMember, User)
        .join(User)
        .where(PipelineMember.pipeline == pipeline_id)
        .order_by(User.name)
    )
    return [MemberRecord(pipeline_id, row.user_id, row.user.name, row.role) for row in rows]
