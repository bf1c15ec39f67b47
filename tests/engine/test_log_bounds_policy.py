"""Byte bounds of the log path, without actors: flushes, chunks, a job's cap, the gate."""

from __future__ import annotations

import threading
from typing import Any

import pykka
import pytest

from actors.backends.kubernetes.logs import send_lines
from actors.logbatch import (
    LINE_OVERHEAD,
    TRUNCATED_PREFIX,
    LineGate,
    LogBatcher,
    StoredLog,
    line_cost,
    log_bytes,
)
from actors.messages import AppendLines, RunJob
from actors.services import Services
from runtime_config import Config, ConfigError
from store.changes import ChangeFeed


def test_a_flush_is_due_on_bytes_as_well_as_on_lines() -> None:
    b = LogBatcher(max_lines=1000, max_bytes=1000, max_age_s=60)
    b.start_job(1, 1, StoredLog())
    b.add(1, ["x" * 400], now=0.0)
    assert not b.should_flush(now=0.0)
    b.add(1, ["x" * 500], now=0.0)
    assert b.should_flush(now=0.0)


def test_chunks_are_bounded_by_bytes_and_numbered_on() -> None:
    b = LogBatcher(max_lines=1000, chunk_bytes=2500, max_age_s=60)
    b.start_job(1, 7, StoredLog(lines=3))
    lines = [f"{n}" * 1000 for n in range(10)]
    b.add(7, lines, now=0.0)
    chunks = b.take()
    assert [c.first_line for c in chunks] == [4, 6, 8, 10, 12]
    assert [len(c.lines) for c in chunks] == [2] * 5
    assert all(line_cost(c.lines) <= 2500 for c in chunks)
    assert [line for c in chunks for line in c.lines] == lines
    assert sum(c.cost for c in chunks) == line_cost(lines)  # the gate gets it all back


def test_one_line_longer_than_a_chunk_is_a_chunk_of_its_own() -> None:
    b = LogBatcher(chunk_bytes=100)
    b.start_job(1, 1, StoredLog())
    b.add(1, ["a", "b" * 500, "c"], now=0.0)
    assert [c.lines for c in b.take()] == [("a",), ("b" * 500,), ("c",)]


def test_a_job_log_stops_at_its_cap_with_one_note() -> None:
    b = LogBatcher(max_job_bytes=1000)
    b.start_job(1, 1, StoredLog())
    first = ["x" * 99] * 9  # 900 bytes with newlines
    assert b.add(1, first, now=0.0) == 0
    over = ["y" * 99] * 3  # the first still fits, the second would pass 1000
    dropped = b.add(1, over, now=0.0)
    assert dropped == line_cost(over[1:])
    assert b.truncated(1)
    assert b.add(1, ["z"], now=0.0) == line_cost(["z"])
    [chunk] = b.take()
    assert chunk.lines[:-1] == (*first, over[0])
    assert chunk.lines[-1].startswith(TRUNCATED_PREFIX)
    assert "1,000 bytes" in chunk.lines[-1]
    assert chunk.cost == line_cost([*first, over[0]])  # the note never went through the gate
    assert b.limit_text == "1,000 bytes"
    assert LogBatcher(max_job_bytes=64 << 20).limit_text == "64 MiB"


def test_the_cap_counts_utf8_bytes() -> None:
    assert log_bytes(["é" * 10, "ab"]) == 20 + 1 + 3
    b = LogBatcher(max_job_bytes=100)
    b.start_job(1, 1, StoredLog())
    b.add(1, ["é" * 40, "é" * 40], now=0.0)  # 81 bytes each
    assert b.truncated(1)
    assert b.take()[0].lines[0] == "é" * 40


def test_a_job_met_mid_way_goes_on_from_what_is_stored() -> None:
    b = LogBatcher(max_job_bytes=1000)
    b.start_job(1, 1, StoredLog(lines=5, bytes=990))
    b.add(1, ["a" * 20], now=0.0)
    assert b.truncated(1)
    [chunk] = b.take()
    assert chunk.first_line == 6 and chunk.lines[0].startswith(TRUNCATED_PREFIX)
    b.start_job(1, 2, StoredLog(lines=9, bytes=1000, truncated=True))
    assert b.add(2, ["late"], now=0.0) == line_cost(["late"])
    assert b.take() == []


class _Recorder(pykka.ThreadingActor):
    def __init__(self) -> None:
        super().__init__()
        self.got: list[AppendLines] = []

    def on_receive(self, message: Any) -> Any:
        self.got.append(message)


def test_producers_hold_the_gate_by_bytes_not_lines() -> None:
    gate = LineGate(limit=100_000)
    services = Services(feed=ChangeFeed(), gate=gate, owner="test")
    recorder = _Recorder.start()
    services.set("log", recorder)
    run = RunJob(1, 1, "j", 1, "j-1", "", None, {}, 0, "n" * 16)
    try:
        batch = ["x" * 60_000]
        send_lines(run, batch, services)
        assert gate.in_flight == 60_000 + LINE_OVERHEAD
        passed = threading.Event()
        stop = threading.Event()

        def second() -> None:
            send_lines(run, batch, services, stop)
            passed.set()

        t = threading.Thread(target=second, name="test-producer")
        t.start()
        assert not passed.wait(0.3)  # 120 kB would be in flight: it waits
        gate.release(60_000 + LINE_OVERHEAD)
        assert passed.wait(5)
        t.join(5)
    finally:
        recorder.stop()


@pytest.mark.parametrize("bad", ["0", "64MiB", "-5"])
def test_the_job_log_cap_is_configured_in_bytes(bad: str) -> None:
    assert Config.from_env(env={}).max_job_log_bytes == 64 << 20
    env = {"CONVEYOR_MAX_JOB_LOG_BYTES": "1048576"}
    assert Config.from_env(env=env).max_job_log_bytes == 1 << 20
    with pytest.raises(ConfigError, match="CONVEYOR_MAX_JOB_LOG_BYTES"):
        Config.from_env(env={"CONVEYOR_MAX_JOB_LOG_BYTES": bad})
