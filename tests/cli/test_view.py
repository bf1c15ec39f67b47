"""The build view's pure parts: rows that fit, which jobs are shown, plain lines."""

from __future__ import annotations

import pytest
from rich.cells import cell_len

from cli.follow import view_height
from cli.view import live_rows, plain_build_line, plain_job_line, prefix, summary
from conveyor.v1 import common_pb2

JS = common_pb2.JobStatus


def job(key: str, status: int, *, needs: tuple[str, ...] = (), reason: str = "",
        job_id: str = "", name: str = "") -> common_pb2.Job:
    j = common_pb2.Job(key=key, job_id=job_id or key.split(" ")[0], name=name or key,
                       status=status, reason=reason, needs=list(needs))  # type: ignore[arg-type]
    if status != JS.JOB_STATUS_PENDING:
        j.start_time.FromSeconds(100)
        if status not in (JS.JOB_STATUS_RUNNING, JS.JOB_STATUS_QUEUED):
            j.finish_time.FromSeconds(102)
    return j


def matrix_build(legs: int = 30) -> common_pb2.Build:
    jobs = []
    for n in range(1, legs + 1):
        status = (JS.JOB_STATUS_RUNNING if n % 3 == 0 else JS.JOB_STATUS_FAILED if n == 7
                  else JS.JOB_STATUS_SUCCEEDED if n < 15 else JS.JOB_STATUS_PENDING)
        jobs.append(job(f"test (leg-{n:02d})", status, job_id="test",
                        name=f"test leg-{n:02d} on a rather long label " + "x" * 60,
                        reason="step 'unit' failed: exit code 1" if n == 7 else ""))
    jobs.append(job("report", JS.JOB_STATUS_PENDING,
                    needs=tuple(j.key for j in jobs)))
    build = common_pb2.Build(number=4, pipeline_name="ci", status=common_pb2.BUILD_STATUS_RUNNING,
                             jobs=jobs)
    build.start_time.FromSeconds(100)
    return build


@pytest.mark.parametrize(("width", "height"), [(80, 24), (200, 50), (40, 10), (20, 3)])
def test_rows_fit_the_terminal(width: int, height: int) -> None:
    rows = live_rows(matrix_build(), width, view_height(height), now=110)
    assert 1 <= len(rows) <= view_height(height) < height
    for row in rows:
        assert cell_len(row.plain) <= width, row.plain
        assert "\n" not in row.plain
    assert rows[0].plain.startswith("build #4 of ci: RUN"[:width - 1])


def test_a_short_terminal_shows_running_and_failed_jobs_and_counts_the_rest() -> None:
    rows = [r.plain for r in live_rows(matrix_build(), 80, view_height(24), now=110)]
    whole = "build #4 of ci: RUNNING · 10.0s · 10 running · 11 pending · 9 succeeded · 1 failed"
    assert summary(matrix_build(), now=110) == whole
    assert rows[0] == whole[:79] + "…"  # cut to the width, never wrapped
    shown = rows[1:-1]
    assert all(("RUNNING" in r) or ("FAILED" in r) for r in shown), shown
    assert any("FAILED" in r and "leg-07" in r for r in shown)
    assert rows[-1].startswith("  … ") and "more:" in rows[-1]
    # What is shown and what is counted make the whole build.
    hidden = int(rows[-1].split("…")[1].split("more")[0])
    assert len(shown) + hidden == 31


def test_a_tall_terminal_shows_every_job_with_needs_by_job_id() -> None:
    rows = [r.plain for r in live_rows(matrix_build(), 200, view_height(50), now=110)]
    assert len(rows) == 32
    assert rows[-1].rstrip().endswith("← test")  # thirty legs, one job


def test_summary_counts_states_and_hides_redundant_reasons() -> None:
    build = matrix_build(3)
    build.status = common_pb2.BUILD_STATUS_SUCCEEDED
    build.reason = "all jobs succeeded or were skipped"
    build.finish_time.FromSeconds(112)
    assert summary(build) == "build #4 of ci: SUCCEEDED · 12.0s · 1 running · 1 pending · " \
                             "2 succeeded"
    build.status = common_pb2.BUILD_STATUS_FAILED
    build.reason = "job 'test' failed"
    assert summary(build).endswith(" — job 'test' failed")


def test_plain_lines_say_each_thing_once() -> None:
    assert plain_job_line(job("lint", JS.JOB_STATUS_SUCCEEDED, reason="succeeded")) == \
        "job lint: SUCCEEDED in 2.0s"
    assert plain_job_line(job("lint", JS.JOB_STATUS_RUNNING)) == "job lint: RUNNING"
    assert plain_job_line(job("deploy", JS.JOB_STATUS_SKIPPED, reason="needs 'test' failed")) \
        == "job deploy: SKIPPED in 2.0s — needs 'test' failed"
    build = common_pb2.Build(number=2, pipeline_name="web",
                             status=common_pb2.BUILD_STATUS_CANCELLED, reason="cancelled")
    assert plain_build_line(build) == "build #2 of web: CANCELLED"


def test_prefixes_never_cut_the_key() -> None:
    assert prefix("test (ubuntu-22.04, 3.11)", 8) == "test (ubuntu-22.04, 3.11) | "
    assert prefix("lint", 8) == "lint     | "
