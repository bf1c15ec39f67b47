"""The whole-build view (build + latest attempt of each job + steps) servicers return."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from conveyor.v1 import common_pb2
from rpc import convert
from rpc.ports import StoreApi
from store.records import BuildRecord, JobRecord


def latest_jobs(jobs: Iterable[JobRecord]) -> list[JobRecord]:
    """The newest attempt of each job key, in the order the keys first appear."""
    latest: dict[str, JobRecord] = {}
    for job in jobs:
        seen = latest.get(job.key)
        if seen is None or (job.attempt, job.id) > (seen.attempt, seen.id):
            latest[job.key] = job
    return list(latest.values())


def build_message(store: StoreApi, record: BuildRecord) -> common_pb2.Build:
    """``record`` with its jobs (latest attempts) and their steps."""
    jobs = latest_jobs(store.list_jobs(record.id))
    steps = store.list_steps([j.id for j in jobs]) if jobs else {}
    return convert.build(record, jobs, steps)


def load_build(store: StoreApi, build_id: int) -> common_pb2.Build:
    """The build as clients see it; raises ``store.NotFound`` for an unknown id."""
    return build_message(store, store.get_build(build_id))


def fingerprint(build: common_pb2.Build) -> bytes:
    """Changes whenever anything a watcher could see changed."""
    return hashlib.blake2b(build.SerializeToString(deterministic=True), digest_size=16).digest()
