"""Matrix combinations, checked against the examples in GitHub's documentation
("Using a matrix for your jobs") and the job keys they produce."""

from __future__ import annotations

import pytest

from workflow import load
from workflow.matrix import MatrixError, combinations, job_keys, product_size, same


def test_github_include_example_fruit_animal() -> None:
    matrix = {
        "fruit": ["apple", "pear"],
        "animal": ["cat", "dog"],
        "include": [
            {"color": "green"},
            {"color": "pink", "animal": "cat"},
            {"fruit": "apple", "shape": "circle"},
            {"fruit": "banana"},
            {"fruit": "banana", "animal": "cat"},
        ],
    }
    assert combinations(matrix, 256) == [
        {"fruit": "apple", "animal": "cat", "color": "pink", "shape": "circle"},
        {"fruit": "apple", "animal": "dog", "color": "green", "shape": "circle"},
        {"fruit": "pear", "animal": "cat", "color": "pink"},
        {"fruit": "pear", "animal": "dog", "color": "green"},
        {"fruit": "banana"},
        {"fruit": "banana", "animal": "cat"},
    ]


def test_github_include_example_os_node_npm() -> None:
    matrix = {
        "os": ["windows-latest", "ubuntu-latest"],
        "node": [14, 16],
        "include": [{"os": "windows-latest", "node": 16, "npm": 6}],
    }
    assert combinations(matrix, 256) == [
        {"os": "windows-latest", "node": 14},
        {"os": "windows-latest", "node": 16, "npm": 6},
        {"os": "ubuntu-latest", "node": 14},
        {"os": "ubuntu-latest", "node": 16},
    ]


def test_github_include_only_example_site_datacenter() -> None:
    matrix = {
        "include": [
            {"site": "production", "datacenter": "site-a"},
            {"site": "staging", "datacenter": "site-b"},
        ]
    }
    assert combinations(matrix, 256) == [
        {"site": "production", "datacenter": "site-a"},
        {"site": "staging", "datacenter": "site-b"},
    ]


def test_github_exclude_example_partial_entries() -> None:
    matrix = {
        "os": ["macos-latest", "windows-latest"],
        "version": [12, 14, 16],
        "environment": ["staging", "production"],
        "exclude": [
            {"os": "macos-latest", "version": 12, "environment": "production"},
            {"os": "windows-latest", "version": 16},
        ],
    }
    result = combinations(matrix, 256)
    assert len(result) == 12 - 1 - 2
    assert {"os": "macos-latest", "version": 12, "environment": "production"} not in result
    assert not [c for c in result if c["os"] == "windows-latest" and c["version"] == 16]
    assert {"os": "macos-latest", "version": 12, "environment": "staging"} in result


def test_include_overwrites_values_added_by_earlier_includes_only() -> None:
    matrix = {
        "a": [1, 2],
        "include": [{"extra": "x"}, {"a": 1, "extra": "y"}, {"a": 3}],
    }
    assert combinations(matrix, 256) == [
        {"a": 1, "extra": "y"},
        {"a": 2, "extra": "x"},
        {"a": 3},
    ]


def test_exclude_then_include_adds_back_as_new_combination() -> None:
    matrix = {"a": [1, 2], "exclude": [{"a": 2}], "include": [{"a": 2, "b": "z"}]}
    assert combinations(matrix, 256) == [{"a": 1}, {"a": 2, "b": "z"}]


def test_values_compare_with_their_types() -> None:
    assert not same(True, 1)
    assert not same("1", 1)
    assert same(1, 1.0)
    matrix = {"v": [1, "1", True], "exclude": [{"v": 1}]}
    assert combinations(matrix, 256) == [{"v": "1"}, {"v": True}]


def test_product_is_checked_before_it_is_built() -> None:
    huge = {f"k{i}": list(range(10)) for i in range(12)}  # 10**12 combinations
    assert product_size(huge) == 10**12
    with pytest.raises(MatrixError, match=r"1,000,000,000,000 combinations .*limit is 256"):
        combinations(huge, 256)


def test_includes_count_towards_the_limit() -> None:
    matrix = {"a": [1, 2], "include": [{"b": i} for i in range(3)] + [{"a": 9}]}
    assert len(combinations(matrix, 3)) == 3
    with pytest.raises(MatrixError, match="limit is 2"):
        combinations({"include": [{"a": 1}, {"a": 2}, {"a": 3}]}, 2)


@pytest.mark.parametrize(
    ("matrix", "message"),
    [
        ({"a": []}, "'a' has no values"),
        ({"a": "x"}, "must be a list"),
        ({"a": [1], "exclude": [{"b": 1}]}, "'b', which is not a matrix variable"),
        ({"a": [1], "exclude": [{"a": 1}]}, "no combinations left"),
        ({"a": [1], "include": "x"}, "`include` must be a list of mappings"),
    ],
)
def test_malformed_matrices(matrix: dict[str, object], message: str) -> None:
    with pytest.raises(MatrixError, match=message):
        combinations(matrix, 256)


def test_job_keys_are_readable_and_unique() -> None:
    combos: list[dict[str, object]] = [
        {"python": "3.11", "os": "ubuntu"},
        {"python": 3.1, "os": {"name": "x", "v": [1]}},
        {"flag": True},
        {"flag": "true"},
    ]
    assert job_keys("test", combos) == [
        "test (3.11, ubuntu)",
        'test (3.1, {"name":"x","v":[1]})',
        "test (true)",
        "test (true) #2",
    ]


WORKFLOW = """
on:
  workflow_dispatch:
    inputs:
      versions: {default: '["3.11", "3.12"]'}
jobs:
  test:
    name: Test ${{ matrix.python }}
    runs-on: ${{ matrix.os }}
    container:
      image: python:${{ matrix.python }}
      env: {PY: "${{ matrix.python }}"}
    strategy:
      fail-fast: false
      max-parallel: 2
      matrix:
        python: ${{ fromJSON(inputs.versions) }}
        os: [ubuntu, debian]
    env:
      INDEX: ${{ strategy.job-index }}/${{ strategy.job-total }}
      LATER: ${{ github.sha }}-${{ matrix.os }}
    steps:
      - id: a
        run: echo ${{ matrix.os }} ${{ steps.a.outputs.b }}
        continue-on-error: ${{ matrix.os == 'debian' }}
  after:
    needs: test
    runs-on: x
    steps:
      - run: echo ${{ needs.test.result }}
"""


def test_plan_substitutes_matrix_and_keeps_runtime_templates() -> None:
    plan = load(WORKFLOW, inputs={"versions": '["3.12", "3.13"]'})
    keys = [job.key for job in plan.jobs]
    assert keys == [
        "test (3.12, ubuntu)",
        "test (3.12, debian)",
        "test (3.13, ubuntu)",
        "test (3.13, debian)",
        "after",
    ]
    second = plan.job("test (3.12, debian)")
    assert second.name == "Test 3.12"
    assert second.runs_on == "debian"
    assert second.image == "python:3.12"
    assert dict(second.container_env) == {"PY": "3.12"}
    assert dict(second.matrix) == {"python": "3.12", "os": "debian"}
    assert second.env["INDEX"] == "1/4"
    assert second.env["LATER"] == "${{ github.sha }}-debian"
    assert second.steps[0].run == "echo debian ${{ steps.a.outputs.b }}"
    assert second.steps[0].continue_on_error is True
    assert plan.jobs[0].steps[0].continue_on_error is False
    assert (second.fail_fast, second.max_parallel) == (False, 2)
    assert (second.matrix_index, second.matrix_total) == (1, 4)
    after = plan.job("after")
    assert after.needs == tuple(keys[:4])
    assert after.needs_ids == ("test",)
    assert after.steps[0].run == "echo ${{ needs.test.result }}"


def test_validation_plans_matrices_with_input_defaults() -> None:
    plan = load(WORKFLOW)
    assert [job.key for job in plan.jobs][:2] == ["test (3.11, ubuntu)", "test (3.11, debian)"]


def test_matrix_job_without_explicit_name_is_named_like_github() -> None:
    plan = load(
        "jobs:\n  t:\n    runs-on: x\n    strategy:\n      matrix:\n        v: [1, 2]\n"
        "    steps: [{run: a}]\n  u:\n    name: Unit\n    runs-on: x\n    strategy:\n"
        "      matrix:\n        v: [1]\n    steps: [{run: a}]\n"
    )
    assert [job.name for job in plan.jobs] == ["t (1)", "t (2)", "Unit (1)"]


def test_github_context_is_substituted_when_given() -> None:
    plan = load(WORKFLOW, github={"sha": "abc123"})
    assert plan.jobs[0].env["LATER"] == "abc123-ubuntu"
