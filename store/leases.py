"""Build ownership: an executor holds a RUNNING build through a lease it keeps renewing.

Times are the executors' clocks (UTC); leases of tens of seconds tolerate the skew of
NTP-synchronised hosts. ``now`` parameters exist so tests can move time, not for callers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from store import fast
from store.builds import builds_query, record_of
from store.db import single_statement, store_call, transaction, utcnow
from store.errors import NotFound
from store.models import Build
from store.records import BuildRecord
from workflow.states import BuildStatus

_RUNNING = BuildStatus.RUNNING.value


def _naive(moment: datetime) -> datetime:
    # Inside SQL functions peewee does not apply the field's conversion.
    return moment.astimezone(UTC).replace(tzinfo=None)


def _check_lease(lease_s: float) -> None:
    if lease_s <= 0:
        raise ValueError(f"lease_s must be > 0, got {lease_s}")


class ClaimKind(StrEnum):
    STARTED = "started"  # QUEUED → RUNNING: a new build (or a new attempt) starts
    TAKEN_OVER = "taken over"  # RUNNING, its lease expired or released: an orphan
    HELD = "held"  # RUNNING under ``owner``'s live lease already


@dataclass(frozen=True)
class Claim:
    build: BuildRecord
    kind: ClaimKind


@store_call
def claim(
    build_id: int, owner: str, lease_s: float, *, now: datetime | None = None
) -> Claim | None:
    """Take a build for ``owner`` and say how: a QUEUED build starts, a RUNNING build whose
    lease expired or was released is taken over, a RUNNING build ``owner`` holds already
    is HELD (a replayed claim, or work of its own that it must not take over from
    itself). None when another live owner holds it or it has finished. Each step is one
    conditional UPDATE: two claimers never both win; the common one (QUEUED) goes first.
    """
    _check_lease(lease_s)
    if not owner:
        raise ValueError("owner must not be empty")
    moment = _naive(now or utcnow())
    until = moment + timedelta(seconds=lease_s)
    steps = (
        (ClaimKind.STARTED, _CLAIM_QUEUED, (owner, until, moment, build_id)),
        (ClaimKind.TAKEN_OVER, _CLAIM_ORPHAN, (owner, until, moment, build_id, moment)),
        (ClaimKind.HELD, _CLAIM_HELD, (owner, until, moment, build_id, owner)),
    )
    with single_statement():
        for kind, update, params in steps:
            claimed = fast.update_returning(update, _CLAIMED, params, _REREAD, (build_id,))
            if claimed:
                return Claim(fast.build_from_row(claimed[0]), kind)
        if fast.execute(_EXISTS, (build_id,)).fetchone() is None:
            raise NotFound(f"no build with id {build_id}")
    return None


def claim_build(
    build_id: int, owner: str, lease_s: float, *, now: datetime | None = None
) -> BuildRecord | None:
    """`claim`, when how does not matter: the build, or None when it is not ``owner``'s."""
    claimed = claim(build_id, owner, lease_s, now=now)
    return None if claimed is None else claimed.build


_CLAIM_SET = (
    f"UPDATE builds SET status = '{_RUNNING}', owner = ?, lease_until = ?, "
    "started_at = COALESCE(started_at, ?) WHERE id = ? AND "
)
_CLAIM_QUEUED = _CLAIM_SET + f"status = '{BuildStatus.QUEUED.value}'"
_CLAIM_ORPHAN = _CLAIM_SET + f"status = '{_RUNNING}' AND (owner IS NULL OR lease_until < ?)"
_CLAIM_HELD = _CLAIM_SET + f"status = '{_RUNNING}' AND owner = ?"
_CLAIMED = f"{fast.BUILD_COLUMNS}, {fast.PIPELINE_NAME}"
_REREAD = f"SELECT {_CLAIMED} FROM builds WHERE id = ?"
_EXISTS = "SELECT 1 FROM builds WHERE id = ?"


@store_call
def renew_leases(
    owner: str, build_ids: Sequence[int], lease_s: float, *, now: datetime | None = None
) -> list[int]:
    """Extend ``owner``'s leases; returns the ids it still owns (the others were taken
    over or finished: their work must stop)."""
    _check_lease(lease_s)
    ids = sorted(set(build_ids))
    if not ids:
        return []
    until = _naive(now or utcnow()) + timedelta(seconds=lease_s)
    marks = fast.marks(len(ids))
    mine = f"id IN ({marks}) AND owner = ? AND status = '{_RUNNING}'"
    with single_statement():
        kept = fast.update_returning(
            f"UPDATE builds SET lease_until = ? WHERE {mine}",
            "id",
            (until, *ids, owner),
            f"SELECT id FROM builds WHERE {mine}",
            (*ids, owner),
        )
    return sorted(row[0] for row in kept)


@store_call
def expired_builds(limit: int = 100, *, now: datetime | None = None) -> list[BuildRecord]:
    """RUNNING builds nobody holds: lease expired, or released by a stopping executor."""
    now = now or utcnow()
    query = (
        builds_query()
        .where(
            (Build.status == _RUNNING)
            & (Build.owner.is_null() | Build.lease_until.is_null() | (Build.lease_until < now))
        )
        .order_by(Build.lease_until, Build.id)
        .limit(limit)
    )
    return [record_of(row) for row in query]


@store_call
def release_build(build_id: int, owner: str) -> bool:
    """Give up ``owner``'s lease so another executor can take the build at once.

    Returns False when ``owner`` did not hold it (nothing changes then).
    """
    with transaction():
        released = (
            Build.update(owner=None, lease_until=None)
            .where((Build.id == build_id) & (Build.owner == owner) & (Build.status == _RUNNING))
            .execute()
        )
    return bool(released)
