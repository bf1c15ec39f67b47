"""A job's actor is started, idle, while its needs run: its release costs one message.

Seen from the outside through the operator console's view of live actors.
"""

from __future__ import annotations

from pathlib import Path

from actors.introspection import describe_all
from conveyor.v1 import pipeline_pb2
from observability import metrics
from support.harness import Engine, engine, eventually


def job_actors() -> dict[str, str]:
    """job key -> state of every live JobActor."""
    return {d.job_key: d.state for d in describe_all(timeout=5) if d.kind == "JobActor"}


def build_counters() -> dict[str, int]:
    (build,) = [d for d in describe_all(timeout=5) if d.kind == "BuildActor"]
    return dict(build.counters)


def wait_for_line(eng: Engine, build_id: int, key: str, text: str) -> None:
    request = pipeline_pb2.StreamBuildLogsRequest(build_id=build_id, job_key=key, follow=True)
    for message in eng.client.pipelines.StreamBuildLogs(request, timeout=30):
        if any(line.text == text for line in message.lines):
            return
    raise AssertionError(f"{key} never printed {text!r}")


def test_the_next_job_waits_as_an_idle_actor_and_is_stopped_on_cancel(tmp_path: Path) -> None:
    with engine(tmp_path) as eng:
        started = eng.start("""
            jobs:
              a: {steps: [{run: "echo started; sleep 30"}]}
              b: {needs: a, steps: [{run: "true"}]}
              c: {needs: b, steps: [{run: "true"}]}
            """)
        wait_for_line(eng, started.id, "a", "started")
        eventually(lambda: job_actors().get("b") == "pending", "b's idle actor")
        assert "c" not in job_actors()  # only the jobs that wait on a running one
        assert metrics.jobs_running() == 1  # an idle actor runs nothing
        # b's needs declare no outputs: its actor renders its launch ahead, for the build
        # to send at once when a succeeds.
        eventually(lambda: build_counters().get("launches_prepared") == 1, "b prepared")
        assert build_counters().get("jobs_warmed") == 1
        eng.cancel(started.id)
        result = eng.watch(started.id)
        assert result.status == "CANCELLED"
        assert result.statuses() == {"a": "CANCELLED", "b": "CANCELLED", "c": "CANCELLED"}
        eventually(lambda: not job_actors(), "every JobActor gone")


def test_the_idle_actor_of_a_skipped_job_is_stopped_at_once(tmp_path: Path) -> None:
    with engine(tmp_path) as eng:
        started = eng.start("""
            jobs:
              a: {steps: [{run: "exit 3"}]}
              b: {needs: a, steps: [{run: "true"}]}
              c: {needs: a, if: always(), steps: [{run: "echo started; sleep 30"}]}
            """)
        wait_for_line(eng, started.id, "c", "started")
        eventually(lambda: set(job_actors()) == {"c"}, "only c's actor, b's stopped")
        eng.cancel(started.id)
        result = eng.watch(started.id)
        assert result.statuses() == {"a": "FAILED", "b": "SKIPPED", "c": "CANCELLED"}
        eventually(lambda: not job_actors(), "every JobActor gone")


def test_a_launch_prepared_for_success_is_not_used_when_a_need_failed(tmp_path: Path) -> None:
    with engine(tmp_path) as eng:
        result = eng.run("""
            jobs:
              a: {steps: [{run: "sleep 0.3; exit 3"}]}
              b:
                needs: a
                if: always()
                steps: [{run: "echo a was ${{ needs.a.result }}"}]
            """)
        assert result.statuses() == {"a": "FAILED", "b": "SUCCEEDED"}
        assert eng.log_text(result.build.id, "b") == ["a was failure"]
