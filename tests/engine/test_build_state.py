"""The pure scheduling rules of a build, without threads."""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any
from unittest.mock import ANY

from hypothesis import given, settings
from hypothesis import strategies as st

import workflow
from actors.build_state import (
    BuildScheduler,
    CancelRunning,
    FinishUnstarted,
    JobOutcome,
    StartJob,
)
from tests.unit.test_dag import dags
from workflow.model import JobSpec, Plan
from workflow.states import BuildStatus, JobStatus


def scheduler(text: str) -> BuildScheduler:
    plan = workflow.load(text)

    def contexts(job: JobSpec, needs: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
        return {"github": {}, "needs": dict(needs), "inputs": {}, "vars": {},
                "matrix": dict(job.matrix)}

    return BuildScheduler(plan, contexts)


def started(actions: list[Any]) -> list[str]:
    return [a.key for a in actions if isinstance(a, StartJob)]


OK = JobOutcome(JobStatus.SUCCEEDED, "succeeded")
FAIL = JobOutcome(JobStatus.FAILED, "exit code 1")


def test_diamond_runs_in_dependency_order() -> None:
    s = scheduler("""
jobs:
  a: {steps: [{run: x}]}
  b: {needs: a, steps: [{run: x}]}
  c: {needs: a, steps: [{run: x}]}
  d: {needs: [b, c], steps: [{run: x}]}
""")
    assert started(s.next_actions()) == ["a"]
    assert sorted(started(s.job_finished("a", OK))) == ["b", "c"]
    assert started(s.job_finished("b", OK)) == []
    assert started(s.job_finished("c", OK)) == ["d"]
    assert not s.done
    s.job_finished("d", OK)
    assert s.done
    assert s.build_outcome()[0] == BuildStatus.SUCCEEDED


def test_failure_skips_dependents_transitively_with_reasons() -> None:
    s = scheduler("""
jobs:
  a: {steps: [{run: x}]}
  b: {needs: a, steps: [{run: x}]}
  c: {needs: b, steps: [{run: x}]}
  d: {needs: c, if: always(), steps: [{run: x}]}
""")
    s.next_actions()
    actions = s.job_finished("a", FAIL)
    skipped = {a.key: a for a in actions if isinstance(a, FinishUnstarted)}
    assert set(skipped) == {"b", "c"}
    assert all(a.status == JobStatus.SKIPPED and a.reason for a in skipped.values())
    assert started(actions) == ["d"]
    s.job_finished("d", OK)
    status, reason = s.build_outcome()
    assert status == BuildStatus.FAILED and "'a'" in reason


def test_continue_on_error_counts_as_success_for_dependents_and_build() -> None:
    s = scheduler("""
jobs:
  a: {continue-on-error: true, steps: [{run: x}]}
  b: {needs: a, steps: [{run: x}]}
""")
    s.next_actions()
    actions = s.job_finished("a", JobOutcome(JobStatus.FAILED, "exit code 1", {}, True))
    assert started(actions) == ["b"]
    s.job_finished("b", OK)
    assert s.build_outcome()[0] == BuildStatus.SUCCEEDED


def test_fail_fast_cancels_running_siblings_and_unstarted_ones() -> None:
    s = scheduler("""
jobs:
  t:
    strategy: {max-parallel: 2, matrix: {n: [1, 2, 3]}}
    steps: [{run: x}]
""")
    assert started(s.next_actions()) == ["t (1)", "t (2)"]
    actions = s.job_finished("t (1)", FAIL)
    assert [a for a in actions if isinstance(a, CancelRunning)] == [
        CancelRunning("t (2)", "fail-fast: 't (1)' failed")]
    cancelled = [a for a in actions if isinstance(a, FinishUnstarted)]
    assert [(a.key, a.status) for a in cancelled] == [("t (3)", JobStatus.CANCELLED)]


def test_max_parallel_releases_the_next_combination() -> None:
    s = scheduler("""
jobs:
  t:
    strategy: {fail-fast: false, max-parallel: 1, matrix: {n: [1, 2, 3]}}
    steps: [{run: x}]
""")
    assert started(s.next_actions()) == ["t (1)"]
    assert started(s.job_finished("t (1)", FAIL)) == ["t (2)"]
    assert started(s.job_finished("t (2)", OK)) == ["t (3)"]


def test_cancel_stops_running_and_cancels_undecided_except_always() -> None:
    s = scheduler("""
jobs:
  a: {steps: [{run: x}]}
  b: {needs: a, steps: [{run: x}]}
  c: {needs: a, if: always(), steps: [{run: x}]}
""")
    s.next_actions()
    actions = s.cancel("cancelled by request")
    assert actions == [CancelRunning("a", "cancelled by request")]
    actions = s.job_finished("a", JobOutcome(JobStatus.CANCELLED, "cancelled by request"))
    decided = {a.key: a for a in actions if isinstance(a, FinishUnstarted)}
    assert decided["b"].status == JobStatus.CANCELLED
    assert started(actions) == ["c"]
    s.job_finished("c", OK)
    assert s.build_outcome()[0] == BuildStatus.CANCELLED


def test_needs_context_carries_outputs_of_matrix_combinations() -> None:
    s = scheduler("""
jobs:
  m:
    strategy: {matrix: {n: [1, 2]}}
    steps: [{run: x}]
  after: {needs: m, steps: [{run: x}]}
""")
    s.next_actions()
    s.job_finished("m (1)", JobOutcome(JobStatus.SUCCEEDED, "ok", {"v": "1"}))
    actions = s.job_finished("m (2)", JobOutcome(JobStatus.SUCCEEDED, "ok", {"v": "2"}))
    assert started(actions) == ["after"]
    needs = s.needs_context(s.plan.job("after"))
    assert needs == {"m": {"result": "success", "outputs": {"v": "2"}}}


def test_restored_outcomes_are_not_run_again() -> None:
    s = scheduler("""
jobs:
  a: {steps: [{run: x}]}
  b: {needs: a, steps: [{run: x}]}
""")
    s.restore("a", OK)
    assert started(s.next_actions()) == ["b"]


def test_upcoming_names_the_undecided_direct_dependents_of_a_started_job() -> None:
    s = scheduler("""
jobs:
  a: {steps: [{run: x}]}
  b: {needs: a, steps: [{run: x}]}
  c: {needs: a, steps: [{run: x}]}
  d: {needs: [b, c], steps: [{run: x}]}
  e: {needs: a, if: "false", steps: [{run: x}]}
""")
    assert started(s.next_actions()) == ["a"]
    assert s.upcoming("a") == ["b", "c", "e"]  # e's `if` is only decided when a ends
    assert s.upcoming("b") == ["d"]
    actions = s.job_finished("a", OK)
    assert sorted(started(actions)) == ["b", "c"]
    assert s.upcoming("a") == []  # b and c run, e is decided (skipped)
    s.job_finished("b", FAIL)
    assert s.upcoming("c") == ["d"]  # d is decided (skipped) only once c ends too
    assert s.job_finished("c", OK) == [FinishUnstarted("d", JobStatus.SKIPPED, ANY)]
    assert s.upcoming("c") == []


@settings(max_examples=150, deadline=None)
@given(dags(), st.randoms(use_true_random=False), st.booleans())
def test_random_builds_decide_every_job_once_and_only_after_its_needs(
    plan: Plan, rng: random.Random, cancel_midway: bool
) -> None:
    """The scheduler keeps its ready set incrementally: check it against the plan."""
    s = BuildScheduler(plan, lambda job, needs: {"needs": dict(needs), "github": {},
                                                 "inputs": {}, "vars": {}, "matrix": {}})
    decided: dict[str, str] = {}
    running: list[str] = []

    def take(actions: list[Any]) -> None:
        for action in actions:
            if isinstance(action, CancelRunning):
                continue
            assert action.key not in decided and action.key not in running
            assert all(need in decided for need in plan.job(action.key).needs)
            if isinstance(action, StartJob):
                running.append(action.key)
            else:
                decided[action.key] = action.status.value

    take(s.next_actions())
    while running:
        key = running.pop(rng.randrange(len(running)))
        outcome = rng.choice([OK, FAIL])
        decided[key] = outcome.status.value
        take(s.job_finished(key, outcome))
        if cancel_midway and rng.random() < 0.2:
            take(s.cancel("stop"))
    assert set(decided) == {j.key for j in plan.jobs}
    assert s.done


def snapshot(s: BuildScheduler) -> tuple[Any, ...]:
    return (dict(s.outcomes), set(s.running), s.done, s.cancelled, s.build_outcome())


@settings(max_examples=150, deadline=None)
@given(dags(), st.randoms(use_true_random=False), st.booleans())
def test_a_repeated_result_or_cancel_changes_nothing(
    plan: Plan, rng: random.Random, cancel_midway: bool
) -> None:
    """Every event may arrive twice (issue 12): the copy, even one that says otherwise
    (a late report), decides nothing and starts nothing; the build is done only when no
    job runs."""
    s = BuildScheduler(plan, lambda job, needs: {"needs": dict(needs), "github": {},
                                                 "inputs": {}, "vars": {}, "matrix": {}})
    running = started(s.next_actions())
    finished: list[str] = []
    while running:
        key = running.pop(rng.randrange(len(running)))
        actions = s.job_finished(key, rng.choice([OK, FAIL]))
        finished.append(key)
        before = snapshot(s)
        again = rng.choice(finished)  # this result again, or an older one
        assert s.job_finished(again, rng.choice([OK, FAIL])) == []
        assert snapshot(s) == before
        if cancel_midway and rng.random() < 0.2:
            actions += s.cancel("stop")
            before = snapshot(s)
            assert s.cancel("stop again") == []
            assert snapshot(s) == before
        running += [a.key for a in actions if isinstance(a, StartJob)]
        assert s.done == (not s.running and len(s.outcomes) == len(plan.jobs))
        assert not (s.done and running)
    assert s.done


def test_expected_needs_context_is_what_a_job_gets_when_its_needs_succeed() -> None:
    s = scheduler("""
jobs:
  a: {steps: [{run: x}]}
  t: {strategy: {matrix: {n: [1, 2]}}, steps: [{run: x}]}
  o: {outputs: {v: "${{ steps.s.outputs.v }}"}, steps: [{id: s, run: x}]}
  d: {needs: [a, t], steps: [{run: x}]}
  e: {needs: [a, o], steps: [{run: x}]}
""")
    expected = s.expected_needs_context("d")
    assert expected == {"a": {"result": "success", "outputs": {}},
                        "t": {"result": "success", "outputs": {}}}
    assert s.expected_needs_context("e") is None  # o's outputs are known only at its end
    s.next_actions()
    for key in ("a", "t (1)", "t (2)"):
        s.job_finished(key, OK)
    assert s.needs_context(s.plan.job("d")) == expected
