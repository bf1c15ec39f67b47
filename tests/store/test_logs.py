"""Chunked log storage: appends, reads from any line, both write methods."""

from __future__ import annotations

import pytest

import store
from store import JobRecord, LogChunkInit, LogWriteMethod, PipelineRecord

METHODS: list[LogWriteMethod] = ["insert", "copy"]  # "copy" is plain inserts on SQLite


@pytest.fixture
def jobs(pipeline: PipelineRecord) -> list[JobRecord]:
    build, _ = store.create_build(pipeline.id, workflow_yaml="s")
    return store.create_jobs(build.id, [store.JobInit("a", "a", "A"), store.JobInit("b", "b", "B")])


def _chunks(job: JobRecord, total: int, size: int) -> list[LogChunkInit]:
    return [
        LogChunkInit(
            job.id,
            first,
            tuple(f"{job.key} line {n}" for n in range(first, min(first + size, total + 1))),
        )
        for first in range(1, total + 1, size)
    ]


@pytest.mark.parametrize("method", METHODS)
def test_reads_from_any_line_across_chunk_boundaries(
    jobs: list[JobRecord], method: LogWriteMethod
) -> None:
    a, b = jobs
    store.append_log_chunks([*_chunks(a, 10, 3), *_chunks(b, 4, 4)], method=method)
    for start in range(1, 12):
        lines = store.read_logs([a.id], from_line=start)
        assert [line.number for line in lines] == list(range(start, 11))
        assert [line.text for line in lines] == [f"a line {n}" for n in range(start, 11)]
    limited = store.read_logs([b.id, a.id], from_line=3, limit=9)
    assert [(line.job_id, line.number) for line in limited] == [
        *[(a.id, n) for n in range(3, 11)],
        (b.id, 3),
    ]
    assert store.log_line_count(a.id) == 10 and store.log_line_count(b.id) == 4


@pytest.mark.parametrize("method", METHODS)
def test_repeated_chunks_are_not_duplicated(jobs: list[JobRecord], method: LogWriteMethod) -> None:
    a, _ = jobs
    chunks = _chunks(a, 6, 2)
    store.append_log_chunks(chunks[:2], method=method)
    store.append_log_chunks(chunks, method=method)  # a retried or re-attached writer
    assert [line.number for line in store.read_logs([a.id])] == list(range(1, 7))


@pytest.mark.parametrize("method", METHODS)
def test_text_survives_exactly(jobs: list[JobRecord], method: LogWriteMethod) -> None:
    a, _ = jobs
    odd = (
        "tab\there",
        "back\\slash \\n not a newline",
        "cr\rreturn",
        "",
        "ünïcødé ✓",
        "nul\x00byte",
    )
    store.append_log_chunks([LogChunkInit(a.id, 1, odd)], method=method)
    texts = [line.text for line in store.read_logs([a.id])]
    assert texts == [*odd[:-1], "nul\ufffdbyte"]


def test_a_line_with_a_newline_is_rejected(jobs: list[JobRecord]) -> None:
    a, _ = jobs
    with pytest.raises(ValueError, match=r"chunks\[1\].*contains a newline"):
        store.append_log_chunks(
            [LogChunkInit(a.id, 1, ("ok",)), LogChunkInit(a.id, 2, ("two\nlines",))]
        )
    assert store.log_line_count(a.id) == 0


@pytest.mark.parametrize("method", METHODS)
def test_hundred_thousand_lines_round_trip_in_order(
    jobs: list[JobRecord], method: LogWriteMethod
) -> None:
    a, _ = jobs
    total = 100_000
    chunks = _chunks(a, total, 500)
    for start in range(0, len(chunks), 40):  # the log actor flushes a batch at a time
        store.append_log_chunks(chunks[start : start + 40], method=method)
    assert store.log_line_count(a.id) == total
    everything = store.read_logs([a.id], limit=total)
    assert [line.number for line in everything] == list(range(1, total + 1))
    assert everything[-1].text == f"a line {total}"
    paged: list[int] = []
    while len(paged) < total:
        page = store.read_logs([a.id], from_line=len(paged) + 1, limit=7_777)
        assert page, f"no lines after {len(paged)}"
        paged.extend(line.number for line in page)
    assert paged == list(range(1, total + 1))


def test_bad_read_arguments_are_rejected(jobs: list[JobRecord]) -> None:
    with pytest.raises(ValueError, match="from_line"):
        store.read_logs([jobs[0].id], from_line=0)
    with pytest.raises(ValueError, match="limit"):
        store.read_logs([jobs[0].id], limit=0)
