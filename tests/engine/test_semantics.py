"""Engine semantics (issue 3 point 5), each through the real gRPC API."""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from conveyor.v1 import pipeline_pb2
from support.harness import Barrier, Engine, engine, matrix


@pytest.fixture
def eng(tmp_path: Path, db_url: str) -> Iterator[Engine]:
    with engine(tmp_path, database_url=db_url) as e:
        yield e


def test_hello_succeeds_with_logs_and_steps(eng: Engine) -> None:
    result = eng.run("""
        name: hello
        jobs:
          greet:
            steps:
              - name: Say hello
                run: echo "hello, world"
              - run: echo second
        """)
    assert result.status == "SUCCEEDED", result.build
    job = result.job("greet")
    assert result.job_status("greet") == "SUCCEEDED"
    assert job.exit_code == 0
    assert [s.name for s in job.steps] == ["Say hello", "Run echo second"]
    assert all(s.reason for s in job.steps)
    assert eng.log_text(result.build.id, "greet") == ["hello, world", "second"]


def test_independent_jobs_run_concurrently(eng: Engine, tmp_path: Path) -> None:
    meet = Barrier(tmp_path / "meet")
    result = eng.run(f"""
        jobs:
          a:
            steps: [{{run: "{meet.arrive_and_wait('a', 'b')}"}}]
          b:
            steps: [{{run: "{meet.arrive_and_wait('b', 'a')}"}}]
        """)
    assert result.statuses() == {"a": "SUCCEEDED", "b": "SUCCEEDED"}


def test_finished_job_unlocks_dependents_and_passes_outputs(eng: Engine) -> None:
    result = eng.run("""
        jobs:
          build:
            outputs:
              version: ${{ steps.v.outputs.version }}
            steps:
              - id: v
                run: echo "version=1.2.3" >> "$GITHUB_OUTPUT"
          test:
            needs: build
            if: needs.build.outputs.version == '1.2.3'
            steps:
              - run: echo "testing ${{ needs.build.outputs.version }}"
        """)
    assert result.status == "SUCCEEDED"
    assert dict(result.job("build").outputs) == {"version": "1.2.3"}
    assert eng.log_text(result.build.id, "test") == ["testing 1.2.3"]
    build, test = result.job("build"), result.job("test")
    assert test.start_time.ToMicroseconds() >= build.finish_time.ToMicroseconds() - 1000


def test_failure_skips_dependents_unless_always_or_failure(eng: Engine) -> None:
    result = eng.run("""
        jobs:
          lint:
            steps: [{run: "exit 3"}]
          test:
            needs: lint
            steps: [{run: "echo never"}]
          report:
            needs: lint
            if: failure()
            steps: [{run: "echo reporting"}]
          cleanup:
            needs: [lint, test]
            if: always()
            steps: [{run: "echo cleanup"}]
        """)
    assert result.status == "FAILED"
    assert result.statuses() == {
        "lint": "FAILED", "test": "SKIPPED", "report": "SUCCEEDED", "cleanup": "SUCCEEDED",
    }
    assert result.job("lint").exit_code == 3
    assert "exit code 3" in result.job("lint").reason
    assert "lint" in result.job("test").reason
    assert "lint" in result.build.reason


def test_continue_on_error_job_does_not_fail_the_build(eng: Engine) -> None:
    result = eng.run("""
        jobs:
          flaky:
            continue-on-error: true
            steps: [{run: "exit 1"}]
          after:
            needs: flaky
            steps: [{run: "echo ran"}]
        """)
    assert result.job_status("flaky") == "FAILED"
    assert result.job_status("after") == "SUCCEEDED"
    assert result.status == "SUCCEEDED"


def test_fail_fast_cancels_sibling_combinations(eng: Engine) -> None:
    result = eng.run("""
        jobs:
          test:
            strategy:
              matrix:
                n: [1, 2, 3]
            steps:
              - run: |
                  if [ "${{ matrix.n }}" = 1 ]; then exit 4; fi
                  sleep 30
        """, timeout=60)
    assert result.status == "FAILED"
    statuses = result.statuses()
    assert statuses["test (1)"] == "FAILED"
    assert statuses["test (2)"] == "CANCELLED" and statuses["test (3)"] == "CANCELLED"
    assert "fail-fast" in result.job("test (2)").reason
    assert [matrix(j) for j in result.build.jobs] == [{"n": 1}, {"n": 2}, {"n": 3}]


def test_max_parallel_is_honoured(eng: Engine, tmp_path: Path) -> None:
    d = tmp_path / "par"
    d.mkdir()
    # Each combination records how many were running when it started.
    result = eng.run(f"""
        jobs:
          t:
            strategy:
              max-parallel: 2
              matrix:
                n: [1, 2, 3, 4, 5]
            steps:
              - run: |
                  touch {d}/run-${{{{ matrix.n }}}}
                  ls {d} | grep -c '^run-' > {d}/seen-${{{{ matrix.n }}}}
                  sleep 0.3
                  rm {d}/run-${{{{ matrix.n }}}}
        """)
    assert result.status == "SUCCEEDED"
    seen = [int((d / f"seen-{n}").read_text()) for n in range(1, 6)]
    assert max(seen) <= 2, seen


def test_global_job_cap_holds_excess_jobs_queued(tmp_path: Path, db_url: str) -> None:
    with engine(tmp_path, max_jobs=1, database_url=db_url) as eng:
        result = eng.run("""
            jobs:
              a: {steps: [{run: "sleep 0.3"}]}
              b: {steps: [{run: "sleep 0.3"}]}
              c: {steps: [{run: "sleep 0.3"}]}
            """)
    assert result.status == "SUCCEEDED"
    assert any(result.ever(key, "QUEUED") for key in ("a", "b", "c"))
    spans = sorted(
        (j.start_time.ToMicroseconds(), j.finish_time.ToMicroseconds()) for j in result.build.jobs
    )
    for (_, end), (start, _) in itertools.pairwise(spans):
        assert start >= end - 5_000, "jobs overlapped despite CONVEYOR_MAX_JOBS=1"


def test_job_timeout_kills_the_job(eng: Engine) -> None:
    result = eng.run("""
        jobs:
          slow:
            timeout-minutes: 0.01
            steps: [{run: "sleep 30"}]
        """)
    assert result.job_status("slow") == "FAILED"
    assert "timed out" in result.job("slow").reason


def test_step_timeout_and_step_reasons(eng: Engine) -> None:
    result = eng.run("""
        jobs:
          j:
            steps:
              - name: slow step
                timeout-minutes: 0.01
                run: sleep 30
              - name: never runs
                run: echo no
              - name: cleanup
                if: always()
                run: echo cleaned
        """)
    job = result.job("j")
    assert result.job_status("j") == "FAILED"
    steps = {s.name: s for s in job.steps}
    assert "timed out" in steps["slow step"].reason
    # The job's reason names the step that failed it and why.
    assert job.reason.startswith("step 'slow step' failed: timed out")
    assert steps["never runs"].reason
    assert eng.log_text(result.build.id, "j")[-1] == "cleaned"
    for step in job.steps:
        assert step.reason, step


def _processes_running(needle: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if needle in cmdline:
                found.append(int(entry.name))
    return found


def test_cancel_build_kills_running_jobs_and_cancels_the_rest(eng: Engine) -> None:
    # A unique sleep length identifies the job's process from outside its pid namespace.
    seconds = f"{random.randint(600, 900)}.{random.randint(1000, 9999)}"
    build = eng.start(f"""
        jobs:
          long:
            steps: [{{run: "echo started; sleep {seconds}"}}]
          later:
            needs: long
            steps: [{{run: "echo never"}}]
        """)
    # Cancel once the job's output shows it is running.
    logs = eng.client.pipelines.StreamBuildLogs(
        pipeline_pb2.StreamBuildLogsRequest(build_id=build.id, follow=True), timeout=60)
    for message in logs:
        if any(line.text == "started" for line in message.lines):
            assert _processes_running(f"sleep {seconds}")
            eng.cancel(build.id)
            break
    logs.cancel()
    result = eng.watch(build.id)
    assert result.status == "CANCELLED"
    assert result.statuses() == {"long": "CANCELLED", "later": "CANCELLED"}
    assert result.job("long").reason and result.job("later").reason
    assert _processes_running(f"sleep {seconds}") == []


def test_job_if_sees_needs_results(eng: Engine) -> None:
    result = eng.run("""
        jobs:
          a:
            steps: [{run: "true"}]
          b:
            needs: a
            if: needs.a.result == 'failure'
            steps: [{run: "echo no"}]
          c:
            needs: a
            if: needs.a.result == 'success'
            steps: [{run: "echo yes"}]
        """)
    assert result.statuses() == {"a": "SUCCEEDED", "b": "SKIPPED", "c": "SUCCEEDED"}
    assert result.job("b").reason
    assert result.status == "SUCCEEDED"


def test_every_terminal_status_has_a_reason(eng: Engine) -> None:
    result = eng.run("""
        jobs:
          ok: {steps: [{run: "true"}]}
          bad: {steps: [{run: "false"}]}
          skipped: {needs: bad, steps: [{run: "true"}]}
        """)
    assert result.build.reason
    for job in result.build.jobs:
        assert job.reason, job
        for step in job.steps:
            assert step.reason, step


def test_matrix_job_waits_for_all_combinations(eng: Engine) -> None:
    result = eng.run("""
        jobs:
          test:
            strategy:
              matrix:
                py: ['3.11', '3.12']
            steps: [{run: "echo ${{ matrix.py }}"}]
          deploy:
            needs: test
            steps: [{run: "echo deploy"}]
        """)
    assert result.status == "SUCCEEDED"
    deploy = result.job("deploy")
    for key in ("test (3.11)", "test (3.12)"):
        finished = result.job(key).finish_time.ToMicroseconds()
        assert deploy.start_time.ToMicroseconds() >= finished - 1000


def test_github_context_in_run_scripts(eng: Engine) -> None:
    result = eng.run("""
        jobs:
          first:
            steps: [{run: "echo job=${{ github.job }} run=${{ github.run_number }}"}]
        """)
    assert result.status == "SUCCEEDED"
    assert eng.log_text(result.build.id, "first") == ["job=first run=1"]


def test_job_workspaces_are_removed_when_jobs_end(tmp_path: Path) -> None:
    with engine(tmp_path) as eng:
        result = eng.run("""
            jobs:
              a: {steps: [{run: "echo data > file.txt; mkdir -p deep/dir"}]}
              b: {needs: a, steps: [{run: "test ! -e file.txt"}]}
            """)
        assert result.status == "SUCCEEDED", result.build.reason
    # After shutdown every reader thread has finished its clean-up.
    assert list((tmp_path / "work").iterdir()) == []
