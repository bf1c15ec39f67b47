"""Metrics move when builds run through the real runtime (SQLite, memory queue, local)."""

from __future__ import annotations

from pathlib import Path

from conveyor.v1 import pipeline_pb2
from observability import metrics
from support.harness import engine
from tests.observability.conftest import sample

DIAMOND = """
    jobs:
      a:
        steps: [{run: "echo a1; echo a2"}]
      b:
        needs: a
        steps: [{run: "echo b"}]
      c:
        needs: a
        steps: [{run: "exit 3"}]
      d:
        needs: [b, c]
        steps: [{run: "echo never"}]
      e:
        if: false
        steps: [{run: "echo skipped"}]
    """


def test_a_build_moves_the_build_job_log_and_latency_metrics(
        tmp_path: Path, fresh: metrics.Metrics) -> None:
    with engine(tmp_path) as eng:
        result = eng.run(DIAMOND)
    assert result.status == "FAILED", result.build
    statuses = result.statuses()
    assert statuses == {"a": "SUCCEEDED", "b": "SUCCEEDED", "c": "FAILED", "d": "SKIPPED",
                        "e": "SKIPPED"}
    m = fresh
    assert sample(m, "conveyor_builds_finished_total", status="FAILED") == 1
    assert sample(m, "conveyor_builds_finished_total", status="SUCCEEDED") == 0
    assert sample(m, "conveyor_build_duration_seconds_count", status="FAILED") == 1
    for status in ("SUCCEEDED", "FAILED", "SKIPPED"):
        expected = sum(1 for s in statuses.values() if s == status)
        assert sample(m, "conveyor_jobs_finished_total", status=status) == expected, status
    # Only jobs that ran have a duration; skipped ones never did.
    assert sample(m, "conveyor_job_duration_seconds_count", status="SUCCEEDED") == 2
    assert sample(m, "conveyor_job_duration_seconds_count", status="FAILED") == 1
    assert sample(m, "conveyor_job_duration_seconds_count", status="SKIPPED") == 0
    # a, b, c started; b and c were released by a.
    assert sample(m, "conveyor_job_queue_seconds_count") == 3
    assert sample(m, "conveyor_dependency_release_seconds_count") == 2
    release = sample(m, "conveyor_dependency_release_seconds_sum")
    assert 0 <= release < 5, release
    assert sample(m, "conveyor_log_lines_ingested_total") >= 3  # a1, a2, b (+ markers)
    assert sample(m, "conveyor_log_lines_written_total") == sample(
        m, "conveyor_log_lines_ingested_total")
    assert m.registry.get_sample_value("conveyor_info", {"role": "all", "version": "0.1.0"}) == 1


def test_a_job_waiting_for_a_slot_is_queued_then_counted(
        tmp_path: Path, fresh: metrics.Metrics) -> None:
    with engine(tmp_path, max_jobs=1) as eng:
        result = eng.run("""
            jobs:
              x: {steps: [{run: "sleep 0.2"}]}
              y: {steps: [{run: "sleep 0.2"}]}
            """)
    assert result.statuses() == {"x": "SUCCEEDED", "y": "SUCCEEDED"}
    assert sample(fresh, "conveyor_job_queue_seconds_count") == 2
    # The second job waited at least for the first one's 0.2 s run.
    assert sample(fresh, "conveyor_job_queue_seconds_sum") >= 0.2
    assert sample(fresh, "conveyor_dependency_release_seconds_count") == 0


def test_running_gauges_and_actors_are_read_live(tmp_path: Path, fresh: metrics.Metrics) -> None:
    with engine(tmp_path) as eng:
        started = eng.start("""
            jobs:
              slow: {steps: [{run: "echo started; sleep 30"}]}
            """)
        # The job's first line reaching the database means its JobActor is running.
        request = pipeline_pb2.StreamBuildLogsRequest(build_id=started.id, job_key="slow",
                                                      follow=True)
        for message in eng.client.pipelines.StreamBuildLogs(request, timeout=30):
            if any(line.text == "started" for line in message.lines):
                break
        assert sample(fresh, "conveyor_builds_running") == 1
        assert sample(fresh, "conveyor_jobs_running") == 1
        assert sample(fresh, "conveyor_actors", kind="Supervisor") == 1
        assert sample(fresh, "conveyor_actors", kind="BuildActor") == 1
        assert sample(fresh, "conveyor_actors", kind="JobActor") == 1
        eng.cancel(started.id)
        assert eng.watch(started.id).status == "CANCELLED"
        assert sample(fresh, "conveyor_jobs_finished_total", status="CANCELLED") == 1
    # Counted after the database write that ends the watch: read once the runtime stopped.
    assert sample(fresh, "conveyor_builds_finished_total", status="CANCELLED") == 1
    assert sample(fresh, "conveyor_builds_running") == 0
    assert sample(fresh, "conveyor_jobs_running") == 0
