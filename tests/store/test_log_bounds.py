"""Reads bounded by bytes, continued lines, and what a LogActor learns of a stored log."""

from __future__ import annotations

import pytest

import store
from store import JobRecord, LogChunkInit, PipelineRecord
from store import logs as store_logs


@pytest.fixture
def job(pipeline: PipelineRecord) -> JobRecord:
    build, _ = store.create_build(pipeline.id, workflow_yaml="s")
    (row,) = store.create_jobs(build.id, [store.JobInit("a", "a", "A")])
    return row


def test_a_read_stops_at_its_byte_budget_after_at_least_one_line(job: JobRecord) -> None:
    lines = tuple(f"{n:04d}" + "x" * 995 for n in range(1, 101))  # 1,000 characters each
    store.append_log_chunks([LogChunkInit(job.id, 1, lines)])
    read = store.read_logs([job.id], max_bytes=10_000)
    assert [line.number for line in read] == list(range(1, 11))
    assert [line.number for line in store.read_logs([job.id], from_line=95, max_bytes=1)] == [95]
    text = "é" * 1000  # 2,000 bytes as UTF-8: a budget counts bytes, not characters
    store.append_log_chunks([LogChunkInit(job.id, 101, (text,) * 10)])
    assert len(store.read_logs([job.id], from_line=101, max_bytes=10_000)) == 5


def test_a_continued_piece_reads_back_marked_and_without_its_mark(job: JobRecord) -> None:
    store.append_log_chunks([LogChunkInit(job.id, 1, ("abc\r", "def\r\r", "ghi", "j\rk"))])
    read = [(line.text, line.continued) for line in store.read_logs([job.id])]
    assert read == [("abc", True), ("def\r", True), ("ghi", False), ("j\rk", False)]


def test_big_chunks_are_read_a_few_at_a_time(job: JobRecord,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """A read of one message's worth does not fetch the whole log (it did: pages of 200
    chunks, read whole, made reading a big log quadratic)."""
    line = "y" * 1023
    store.append_log_chunks(
        [LogChunkInit(job.id, 1 + 1024 * n, (line,) * 1024) for n in range(40)])  # 40 MiB
    fetched: list[int] = []
    real = store_logs._page

    def counting(job_row_id: int, after: int, size: int) -> list[tuple[int, int, str]]:
        page = real(job_row_id, after, size)
        fetched.append(sum(len(content) for _, _, content in page))
        return page

    monkeypatch.setattr(store_logs, "_page", counting)
    read = store.read_logs([job.id], from_line=5000, limit=1000, max_bytes=2 << 20)
    assert read[0].number == 5000 and len(read) == 1000
    assert sum(fetched) <= 3 << 20
    everything = store.read_logs([job.id], limit=1 << 20)
    assert len(everything) == 40 * 1024


def test_the_extent_of_a_stored_log(job: JobRecord) -> None:
    assert store_logs.log_extent(job.id) == (0, 0, "")
    store.append_log_chunks([LogChunkInit(job.id, 1, ("ab", "ü")),
                             LogChunkInit(job.id, 3, ("cd\r", "last one"))])
    assert store_logs.log_extent(job.id) == (4, 3 + 3 + 4 + 9, "last one")


def test_a_byte_budget_must_be_positive(job: JobRecord) -> None:
    with pytest.raises(ValueError, match="max_bytes"):
        store.read_logs([job.id], max_bytes=0)
