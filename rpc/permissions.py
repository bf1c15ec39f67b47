"""Who may do what on a pipeline (pure).

Roles are ordered: viewer < developer < admin. Each action needs a minimum role;
instance admins may do everything, whatever their membership.
"""

from __future__ import annotations

from enum import Enum

ROLES = ("viewer", "developer", "admin")


class Action(Enum):
    """What a call does to a pipeline, with the least role it needs."""

    READ = ("viewer", "read")  # the pipeline, its builds, logs, members
    OPERATE = ("developer", "trigger, cancel or retry builds of")
    MANAGE = ("admin", "change or manage the members of")

    @property
    def least_role(self) -> str:
        return self.value[0]

    @property
    def verb(self) -> str:
        return self.value[1]


def allows(role: str | None, action: Action) -> bool:
    """Whether a member with ``role`` (None: not a member) may do ``action``."""
    if role not in ROLES:
        return False
    return ROLES.index(role) >= ROLES.index(action.least_role)


def denial(user: str, role: str, action: Action, pipeline: str) -> str:
    """The PERMISSION_DENIED message: what is missing and who can grant it."""
    return (
        f"user {user!r} is a {role} of pipeline {pipeline!r} and may not {action.verb} it: "
        f"that needs the {action.least_role} role (a pipeline admin can grant it)"
    )
