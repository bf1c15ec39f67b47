"""RetryBuild in the database: a finished build becomes QUEUED again as a new attempt.

The BuildActor that takes the build then restores every job whose latest row is
terminal and runs the ones whose latest row is PENDING, which are exactly the rows
created here (see ``store.rerun_rules`` for which).
"""

from __future__ import annotations

from typing import Any

from store.builds import build_row, check_queued, record_of
from store.convert import load_json
from store.db import backend, store_call, transaction, utcnow
from store.errors import InvalidState
from store.models import Build, Job
from store.records import BuildRecord
from store.rerun_rules import LatestJob, jobs_to_rerun
from workflow.states import BuildStatus, JobStatus


@store_call
def rerun_build(build_id: int, *, max_queued: int | None = None) -> tuple[BuildRecord, list[str]]:
    """Queue a new attempt of a finished build that re-runs its failed jobs.

    Returns the build (QUEUED, attempt + 1, unpublished: publish its BuildJob next)
    and the job keys that will run again. `InvalidState` when the build is not finished
    or has nothing to re-run; `LimitReached` when its pipeline has ``max_queued`` queued
    builds; `NotFound` for an unknown build. All or nothing.
    """
    with transaction():
        query = Build.select().where(Build.id == build_id)
        if backend() == "postgresql":
            query = query.for_update()  # two retries at once: the second sees RUNNING/QUEUED
        query.first()
        row = build_row(build_id)
        status = BuildStatus(row.status)
        if not status.terminal:
            raise InvalidState(
                f"build {build_id} is {status.value}: only a finished build can be retried "
                "(cancel it first, or wait for it to finish)"
            )
        latest: dict[str, Any] = {}
        for job in Job.select().where(Job.build == build_id).order_by(Job.id):
            seen = latest.get(job.key)
            if seen is None or job.attempt > seen.attempt:
                latest[job.key] = job
        keys = jobs_to_rerun(
            LatestJob(j.key, JobStatus(j.status), tuple(load_json(j.needs, [])))
            for j in latest.values()
        )
        if latest and not keys:
            raise InvalidState(
                f"build {build_id} has no failed or cancelled jobs to re-run "
                f"(it {status.value.lower()})"
            )
        if max_queued is not None:
            check_queued(row.pipeline_id, row.pipeline.name, max_queued)
        attempt = row.attempt + 1
        now = utcnow()
        moved = (
            Build.update(
                status=BuildStatus.QUEUED.value, attempt=attempt, reason="", owner=None,
                lease_until=None, started_at=None, finished_at=None, published=False,
                cancel_requested=False, republish_after=None,
            )
            .where((Build.id == build_id) & (Build.status == status.value))
            .execute()
        )
        if not moved:
            raise InvalidState(f"build {build_id} changed while it was being retried; try again")
        for key in sorted(keys):
            old = latest.get(key)
            if old is None:
                continue  # never created: the BuildActor creates it with this attempt
            if not JobStatus(old.status).terminal:
                # Left unfinished by a build that ended in ERROR: close it for the record.
                Job.update(status=JobStatus.CANCELLED.value, finished_at=now,
                           reason=f"superseded by build attempt {attempt}").where(
                    Job.id == old.id).execute()
            Job.insert(
                build=build_id, key=old.key, job_id=old.job_id, name=old.name,
                status=JobStatus.PENDING.value, matrix=old.matrix, needs=old.needs,
                # A job retried after a lost executor may already hold this attempt number.
                attempt=max(attempt, old.attempt + 1),
            ).execute()
        return record_of(build_row(build_id)), sorted(keys)
