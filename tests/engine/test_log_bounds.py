"""Bounded logs through the whole local path: long lines, a job's cap, readable streams,
backpressure by bytes."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

import pytest

import runtime
import store
from actors.logbatch import TRUNCATED_PREFIX, LineGate
from conveyor.v1 import pipeline_pb2
from store.records import LogChunkInit
from support.harness import engine
from workflow.markers import MAX_LINE


def test_a_job_log_stops_at_its_cap_and_the_job_is_flagged_not_failed(tmp_path: Path) -> None:
    with engine(tmp_path, max_job_log_bytes=10_000) as eng:
        result = eng.run("""
            jobs:
              chatty:
                outputs:
                  after: ${{ steps.last.outputs.after }}
                steps:
                  - run: for i in $(seq 1 1000); do printf '%099d\\n' $i; done
                  - id: last
                    run: echo "after=still here" >> "$GITHUB_OUTPUT"; echo never shown
            """, timeout=60)
        job = result.job("chatty")
        assert result.status == "SUCCEEDED" and result.job_status("chatty") == "SUCCEEDED"
        assert job.reason == "succeeded (log truncated at 10,000 bytes)"
        assert [s.reason for s in job.steps] == ["succeeded", "succeeded"]  # events still seen
        assert dict(job.outputs) == {"after": "still here"}
        lines = eng.log_text(result.build.id, "chatty")
        assert lines[:-1] == [f"{i:099d}" for i in range(1, len(lines))]
        assert len(lines) == 101  # 100 lines of 100 bytes, then the note
        assert lines[-1].startswith(TRUNCATED_PREFIX)
        assert "never shown" not in lines


def test_a_long_line_is_stored_in_continued_pieces(tmp_path: Path) -> None:
    with engine(tmp_path) as eng:
        result = eng.run("""
            jobs:
              wide:
                steps:
                  - run: head -c 200000 /dev/zero | tr '\\0' w; echo; echo next
            """, timeout=60)
        assert result.status == "SUCCEEDED"
        lines = eng.logs(result.build.id, "wide")
        assert [len(line.text) for line in lines] == [MAX_LINE] * 3 + [200_000 - 3 * MAX_LINE, 4]
        assert [line.continued for line in lines] == [True, True, True, False, False]
        assert "".join(line.text for line in lines[:4]) == "w" * 200_000


def test_every_stored_log_streams_in_bounded_messages(tmp_path: Path) -> None:
    """300 lines of 64 KiB were one 20 MB message, over every client's limit."""
    with engine(tmp_path) as eng:
        result = eng.run("""
            jobs:
              big:
                steps:
                  - run: yes "$(printf '%065535d' 0)" | head -n 300
            """, timeout=60)
        assert result.status == "SUCCEEDED"
        call = eng.client.pipelines.StreamBuildLogs(
            pipeline_pb2.StreamBuildLogsRequest(build_id=result.build.id), timeout=60)
        sizes, count = [], 0
        for message in call:
            sizes.append(message.ByteSize())
            count += len(message.lines)
        assert count == 300
        assert max(sizes) < 1_200_000


def test_a_line_stored_before_lines_were_cut_is_sent_shortened(tmp_path: Path) -> None:
    with engine(tmp_path) as eng:
        result = eng.run("jobs: {old: {steps: [{run: 'true'}]}}", timeout=60)
        [job] = [j for j in store.list_jobs(result.build.id)]
        store.append_log_chunks([LogChunkInit(job.id, 1, ("x" * (20 << 20), "after"))])
        lines = eng.logs(result.build.id, "old")
        assert [line.number for line in lines] == [1, 2]
        assert lines[0].text.startswith("x" * (1 << 20))
        assert lines[0].text.endswith("[conveyor: line shortened, 19,922,944 more characters "
                                      "stored]")
        assert lines[1].text == "after"


class _WatchedGate(LineGate):
    """The runtime's gate, small, saying when a producer first has to wait."""

    def __init__(self) -> None:
        super().__init__(limit=2 << 20)
        self.waiting = threading.Event()

    def acquire(self, n: int, stop: threading.Event | None = None) -> None:
        with self._cond:
            if self._in_flight and self._in_flight + n > self.limit:
                self.waiting.set()
        super().acquire(n, stop)


def test_a_job_waits_while_its_bytes_are_not_written(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """The gate counted lines (200,000 of them: 12 GiB of 64 KiB lines); it counts bytes."""
    gate = _WatchedGate()
    monkeypatch.setattr(runtime, "LineGate", lambda: gate)
    writes_allowed = threading.Event()
    real_append = store.append_log_chunks

    def held_append(chunks: Sequence[LogChunkInit], **kwargs: object) -> None:
        writes_allowed.wait(60)
        real_append(chunks)

    monkeypatch.setattr(store, "append_log_chunks", held_append)
    try:
        with engine(tmp_path) as eng:
            build = eng.start("""
                jobs:
                  flood:
                    steps:
                      - run: yes "$(printf '%065535d' 0)" | head -n 320
                """)
            assert gate.waiting.wait(30), "the job's 20 MiB went by a 2 MiB gate"
            assert gate.in_flight <= gate.limit
            writes_allowed.set()
            result = eng.watch(build.id, timeout=60)
            assert result.status == "SUCCEEDED"
            assert len(eng.logs(build.id, "flood")) == 320
    finally:
        writes_allowed.set()


def test_a_job_output_longer_than_a_line_still_flows(tmp_path: Path) -> None:
    """Its marker is one line of 133 kB (base64): markers are not cut (up to 4 MiB)."""
    with engine(tmp_path) as eng:
        result = eng.run("""
            jobs:
              make:
                outputs:
                  blob: ${{ steps.s.outputs.blob }}
                steps:
                  - id: s
                    run: echo "blob=$(head -c 100000 /dev/zero | tr '\\0' b)" >> "$GITHUB_OUTPUT"
              use:
                needs: make
                env:
                  WANT: ${{ needs.make.outputs.blob }}
                steps:
                  - run: test "$WANT" = "$(head -c 100000 /dev/zero | tr '\\0' b)"
            """, timeout=60)
        assert result.statuses() == {"make": "SUCCEEDED", "use": "SUCCEEDED"}
        assert len(dict(result.job("make").outputs)["blob"]) == 100_000
