"""A build's job rows when its BuildActor starts: the latest attempt of each job.

A fresh build gets a row per job. A build taken over keeps every job that already
finished (restored into the scheduler, never run again), re-attaches to a job still
running on a backend that can adopt it (Kubernetes), and runs again, as a new attempt
with its own log, a job whose process died with its executor.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import store
from actors.build_state import BuildScheduler, JobOutcome
from observability import metrics
from store.records import JobInit, JobRecord
from workflow.model import JobSpec
from workflow.states import JobStatus


@dataclass
class JobRows:
    latest: dict[str, JobRecord]  # job key -> the row of its attempt to run or restore
    resuming: set[str] = field(default_factory=set)  # running jobs to re-attach to
    retried: int = 0  # lost attempts run again


def job_rows(build_id: int, attempt: int, scheduler: BuildScheduler, *, owner: str,
             adopts: bool) -> JobRows:
    plan = scheduler.plan
    latest: dict[str, JobRecord] = {}
    for row in store.list_jobs(build_id):
        if row.key not in latest or row.attempt > latest[row.key].attempt:
            latest[row.key] = row
    missing = [job for job in plan.jobs if job.key not in latest]
    for row in store.create_jobs(build_id, [job_init(job, attempt) for job in missing]):
        latest[row.key] = row
    rows = JobRows(latest)
    for job in plan.jobs:
        row = latest[job.key]
        if row.status.terminal:
            scheduler.restore(row.key, JobOutcome(row.status, row.reason, dict(row.outputs)))
        elif row.status == JobStatus.RUNNING and adopts:
            rows.resuming.add(job.key)  # started again under the same name: adoption
        elif row.status == JobStatus.RUNNING:
            rows.retried += 1
            metrics.job_finished(JobStatus.FAILED.value)  # metrics: the lost attempt
            store.update_job(row.id, status=JobStatus.FAILED, reason=(
                f"its executor was lost (build taken over by {owner}); "
                f"retried as attempt {row.attempt + 1}"), finished=True)
            (latest[job.key],) = store.create_jobs(build_id, [job_init(job, row.attempt + 1)])
    return rows


def job_init(job: JobSpec, attempt: int) -> JobInit:
    return JobInit(key=job.key, job_id=job.job_id, name=job.name, needs=job.needs,
                   matrix=dict(job.matrix), attempt=attempt)
