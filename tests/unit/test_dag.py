"""The job graph and the run/skip decisions, including property-based checks."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workflow.conditions import job_should_run
from workflow.dag import Dag, aggregate, find_cycles, topological
from workflow.model import JobSpec, Plan

RESULTS = ("success", "failure", "cancelled", "skipped")


def job(key: str, *needs: str, if_: str | None = None, job_id: str | None = None) -> JobSpec:
    return JobSpec(
        key=key,
        job_id=job_id or key,
        name=key,
        needs=needs,
        needs_ids=tuple(dict.fromkeys(n.split(" ")[0] for n in needs)),
        if_=if_,
    )


def test_order_ready_and_dependents() -> None:
    plan = Plan(
        "p",
        (
            job("lint"),
            job("test (a)", "lint", job_id="test"),
            job("test (b)", "lint", job_id="test"),
            job("deploy", "test (a)", "test (b)"),
            job("docs"),
        ),
    )
    dag = Dag(plan)
    order = dag.order()
    assert order.index("lint") < order.index("test (a)") < order.index("deploy")
    assert dag.ready({}) == ["lint", "docs"]
    assert dag.ready({}, started=["lint"]) == ["docs"]
    assert dag.ready({"lint": "success", "docs": "success"}) == ["test (a)", "test (b)"]
    assert dag.ready({"lint": "success", "test (a)": "success"}, {"test (b)"}) == ["docs"]
    assert dag.dependents("lint") == {"test (a)", "test (b)", "deploy"}
    assert dag.dependents("deploy") == set()
    assert dag.direct_dependents("lint") == ["test (a)", "test (b)"]
    assert dag.direct_dependents("test (b)") == ["deploy"]
    done = {"test (a)": "success", "test (b)": "failure"}
    assert dag.needs_results("deploy", done) == {"test": "failure"}


@pytest.mark.parametrize(
    ("results", "expected"),
    [
        (["success", "failure", "cancelled"], "failure"),
        (["success", "cancelled"], "cancelled"),
        (["skipped", "skipped"], "skipped"),
        (["skipped", "success"], "success"),
        (["success"], "success"),
    ],
)
def test_matrix_results_aggregate_like_github(results: list[str], expected: str) -> None:
    assert aggregate(results) == expected


def test_cycles_are_reported_with_their_path() -> None:
    assert find_cycles({"a": ["b"], "b": ["c"], "c": ["a"], "d": []}) == [["a", "b", "c", "a"]]
    assert find_cycles({"a": ["b"], "b": []}) == []
    with pytest.raises(ValueError, match="cycle"):
        topological({"a": ["b"], "b": ["a"]})


def test_deep_chain_needs_no_recursion() -> None:
    graph = {f"j{i}": [f"j{i - 1}"] if i else [] for i in range(5000)}
    assert topological(graph)[-1] == "j4999"
    assert find_cycles(graph) == []


def run(j: JobSpec, needs: dict[str, str], cancelled: bool = False) -> tuple[bool, str]:
    return job_should_run(j, needs, {"github": {"ref": "refs/heads/main"}}, cancelled=cancelled)


def test_default_condition_is_success() -> None:
    assert run(job("b", "a"), {"a": "success"}) == (True, "")
    assert run(job("b", "a"), {"a": "failure"}) == (False, "needs 'a' failed")
    assert run(job("b", "a"), {"a": "skipped"}) == (False, "needs 'a' was skipped")
    assert run(job("b", "a"), {"a": "cancelled"}) == (False, "needs 'a' was cancelled")
    assert run(job("b"), {}, cancelled=True) == (False, "build was cancelled")


def test_plain_condition_gets_implicit_success() -> None:
    cond = job("b", "a", if_="github.ref == 'refs/heads/main'")
    assert run(cond, {"a": "success"}) == (True, "")
    assert run(cond, {"a": "failure"}) == (False, "needs 'a' failed")
    other = job("b", "a", if_="github.ref == 'x'")
    assert run(other, {"a": "success"}) == (False, "if: github.ref == 'x' was false")


def test_status_functions() -> None:
    assert run(job("b", "a", if_="always()"), {"a": "failure"}) == (True, "")
    assert run(job("b", "a", if_="always()"), {"a": "success"}, cancelled=True) == (True, "")
    assert run(job("b", "a", if_="failure()"), {"a": "failure"}) == (True, "")
    assert run(job("b", "a", if_="failure()"), {"a": "success"}) == (
        False,
        "if: failure() was false",
    )
    assert run(job("b", "a", if_="cancelled()"), {"a": "success"}, cancelled=True) == (True, "")
    assert run(job("b", "a", if_="success() || failure()"), {"a": "failure"}) == (True, "")
    assert run(job("b", "a", if_="success() && true"), {"a": "skipped"}) == (
        False,
        "needs 'a' was skipped",
    )
    assert run(job("b", "a", if_="failure()"), {"a": "failure"}, cancelled=True) == (
        False,
        "build was cancelled",
    )


def test_needs_context_is_filled_in() -> None:
    cond = job("b", "a", if_="always() && needs.a.result == 'failure'")
    assert run(cond, {"a": "failure"}) == (True, "")
    assert run(cond, {"a": "success"})[0] is False


def test_expression_error_does_not_run() -> None:
    ran, reason = run(job("b", if_="fromJSON('{')"), {})
    assert ran is False and reason.startswith("if: ")


@st.composite
def dags(draw: st.DrawFn) -> Plan:
    size = draw(st.integers(min_value=1, max_value=25))
    jobs = []
    for i in range(size):
        earlier = [f"j{k}" for k in range(i)]
        needs = draw(st.lists(st.sampled_from(earlier), unique=True)) if earlier else []
        cond = draw(st.sampled_from([None, "always()", "failure()", "success()", "false"]))
        jobs.append(job(f"j{i}", *needs, if_=cond))
    shuffled = draw(st.permutations(jobs))
    return Plan("random", tuple(shuffled))


@settings(max_examples=150, deadline=None)
@given(dags())
def test_random_dags_have_a_topological_order(plan: Plan) -> None:
    order = Dag(plan).order()
    assert sorted(order) == sorted(j.key for j in plan.jobs)
    position = {key: i for i, key in enumerate(order)}
    for j in plan.jobs:
        assert all(position[need] < position[j.key] for need in j.needs)


@settings(max_examples=150, deadline=None)
@given(dags(), st.randoms(use_true_random=False), st.booleans())
def test_deciding_ready_jobs_terminates_with_every_job_decided(
    plan: Plan, rng: random.Random, cancel_midway: bool
) -> None:
    dag = Dag(plan)
    done: dict[str, str] = {}
    cancelled = False
    for _round in range(len(plan.jobs) + 1):
        ready = dag.ready(done)
        if not ready:
            break
        for key in ready:
            spec = plan.job(key)
            should, reason = job_should_run(
                spec, dag.needs_results(key, done), {}, cancelled=cancelled
            )
            assert should or reason
            done[key] = rng.choice(RESULTS[:3]) if should else "skipped"
        cancelled = cancelled or (cancel_midway and rng.random() < 0.3)
    assert set(done) == {j.key for j in plan.jobs}
