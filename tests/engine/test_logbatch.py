"""The log batching policy and the backpressure gate, without actors."""

from __future__ import annotations

import threading

from actors.logbatch import LineGate, LogBatcher, StoredLog


def test_lines_are_numbered_per_job_continuing_after_stored_ones() -> None:
    b = LogBatcher(max_lines=100, max_age_s=1.0)
    b.start_job(build_id=1, job_row_id=10, stored=StoredLog())
    b.start_job(build_id=1, job_row_id=11, stored=StoredLog(lines=5))
    b.add(10, ("a", "b"), now=0.0)
    b.add(11, ("x",), now=0.0)
    b.add(10, ("c",), now=0.0)
    chunks = {c.job_row_id: c for c in b.take()}
    assert (chunks[10].first_line, chunks[10].lines) == (1, ("a", "b", "c"))
    assert (chunks[11].first_line, chunks[11].lines) == (6, ("x",))
    b.add(10, ("d",), now=1.0)
    assert [(c.first_line, c.lines) for c in b.take()] == [(4, ("d",))]


def test_flush_on_size_or_age() -> None:
    b = LogBatcher(max_lines=3, max_age_s=0.1)
    b.start_job(1, 1, StoredLog())
    assert not b.should_flush(now=0.0)
    b.add(1, ("a",), now=0.0)
    assert not b.should_flush(now=0.05)
    assert b.should_flush(now=0.1)
    b.take()
    b.add(1, ("a", "b", "c"), now=5.0)
    assert b.should_flush(now=5.0)


def test_gate_blocks_producers_until_lines_are_written() -> None:
    gate = LineGate(limit=10)
    gate.acquire(8)
    passed = threading.Event()

    def producer() -> None:
        gate.acquire(5)
        passed.set()

    t = threading.Thread(target=producer, name="test-producer")
    t.start()
    assert not passed.wait(0.2)  # 8 + 5 > 10: must wait
    gate.release(8)
    assert passed.wait(5)
    t.join(5)
    assert gate.in_flight == 5


def test_a_batch_larger_than_the_limit_passes_when_nothing_is_in_flight() -> None:
    gate = LineGate(limit=10)
    gate.acquire(50)
    assert gate.in_flight == 50
