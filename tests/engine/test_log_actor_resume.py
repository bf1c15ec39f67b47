"""A LogActor that meets a job mid-way (a restart, a takeover) keeps its log's cap."""

from __future__ import annotations

from collections.abc import Iterator
from typing import cast

import pytest

import store
from actors.log_actor import LogActor, LogActorProxy
from actors.logbatch import TRUNCATED_PREFIX, LineGate, truncation_note
from actors.messages import AppendLines
from store.changes import ChangeFeed
from store.records import JobRecord, LogChunkInit


@pytest.fixture
def job(db_url: str) -> Iterator[JobRecord]:
    db = store.open_database(db_url, retry_s=5.0)
    store.migrate(db)
    try:
        pipeline = store.create_pipeline("p", "jobs: {}\n")
        build, _ = store.create_build(pipeline.id, workflow_yaml="s")
        (row,) = store.create_jobs(build.id, [store.JobInit("a", "a", "A")])
        yield row
    finally:
        store.close_database()


def _send(job: JobRecord, lines: tuple[str, ...], limit: int) -> list[str]:
    ref = LogActor.start(ChangeFeed(), LineGate(), max_job_bytes=limit)
    try:
        ref.tell(AppendLines(job.build_id, job.id, lines))
        proxy = cast(LogActorProxy, ref.proxy())
        proxy.flush().get(timeout=10)
    finally:
        ref.stop()
    return [line.text for line in store.read_logs([job.id])]


def test_a_stored_log_that_was_capped_takes_no_more_lines(job: JobRecord) -> None:
    note = truncation_note(100)
    store.append_log_chunks([LogChunkInit(job.id, 1, ("a" * 50, note))])
    assert _send(job, ("late",), limit=100) == ["a" * 50, note]


def test_a_stored_log_counts_toward_the_cap(job: JobRecord) -> None:
    store.append_log_chunks([LogChunkInit(job.id, 1, ("a" * 89,))])  # 90 bytes
    logged = _send(job, ("b" * 9, "c" * 9), limit=100)
    assert logged[:2] == ["a" * 89, "b" * 9]
    assert logged[2].startswith(TRUNCATED_PREFIX) and len(logged) == 3
