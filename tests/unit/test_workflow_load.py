"""Loading valid workflows into a Plan: defaults, kept templates, inputs."""

from __future__ import annotations

import pytest

from workflow import WorkflowInvalid, load, resolve_inputs, validate
from workflow.model import DEFAULT_JOB_TIMEOUT_MINUTES, Resources

FULL = """\
name: Full
on:
  push: {branches: [main]}
  workflow_dispatch:
    inputs:
      target: {type: choice, options: [staging, prod], default: staging, required: true}
      dry: {type: boolean, default: true}
      count: {type: number, default: 2}
      note: {description: free text}
permissions: {contents: read}
env:
  TARGET: ${{ inputs.target }}
defaults:
  run: {shell: bash, working-directory: src}
jobs:
  build:
    runs-on: [self-hosted, linux]
    container:
      image: python:3.12
      env: {PIP: "1"}
    timeout-minutes: 30
    continue-on-error: true
    resources: {cpu: 500m, memory: 1Gi}
    defaults:
      run: {shell: sh}
    outputs:
      version: ${{ steps.v.outputs.version }}
    steps:
      - uses: actions/checkout@v4
      - id: v
        run: |
          echo "version=1" >> "$GITHUB_OUTPUT"
          echo done
        env: {A: b}
        shell: python
        working-directory: sub
        timeout-minutes: 2.5
        continue-on-error: ${{ inputs.dry }}
        if: ${{ success() && inputs.dry }}
  deploy:
    name: Deploy to ${{ inputs.target }}
    needs: build
    if: needs.build.outputs.version != ''
    runs-on: ubuntu
    steps:
      - name: Ship
        run: echo ${{ needs.build.outputs.version }}
"""


def test_full_workflow_plan() -> None:
    plan = load(FULL)
    assert plan.name == "Full"
    assert dict(plan.env) == {"TARGET": "${{ inputs.target }}"}
    assert (plan.defaults_shell, plan.defaults_working_directory) == ("bash", "src")
    assert list(plan.inputs) == ["target", "dry", "count", "note"]
    assert plan.inputs["target"].options == ("staging", "prod")
    assert plan.inputs["count"].default == 2
    build, deploy = plan.jobs
    assert build.key == "build" and build.name == "build"
    assert build.runs_on == ["self-hosted", "linux"]
    assert (build.image, dict(build.container_env)) == ("python:3.12", {"PIP": "1"})
    assert (build.timeout_minutes, build.continue_on_error) == (30.0, True)
    assert build.resources == Resources(cpu="500m", memory="1Gi")
    assert build.defaults_shell == "sh"
    assert dict(build.outputs) == {"version": "${{ steps.v.outputs.version }}"}
    checkout, script = build.steps
    assert (checkout.index, checkout.uses, checkout.name) == (
        0,
        "actions/checkout@v4",
        "Run actions/checkout@v4",
    )
    assert script.name == 'Run echo "version=1" >> "$GITHUB_OUTPUT"'
    assert (script.id, script.shell, script.working_directory) == ("v", "python", "sub")
    assert (script.timeout_minutes, script.continue_on_error) == (2.5, "inputs.dry")
    assert script.if_ == "success() && inputs.dry"
    assert deploy.name == "Deploy to ${{ inputs.target }}"
    assert deploy.if_ == "needs.build.outputs.version != ''"
    assert (deploy.needs, deploy.needs_ids) == (("build",), ("build",))
    assert deploy.timeout_minutes == DEFAULT_JOB_TIMEOUT_MINUTES
    assert deploy.steps[0].name == "Ship"


def test_given_inputs_are_substituted() -> None:
    inputs = resolve_inputs(load(FULL), {"target": "prod", "dry": "false"})
    assert inputs == {"target": "prod", "dry": False, "count": 2, "note": ""}
    plan = load(FULL, inputs=inputs)
    assert plan.job("deploy").name == "Deploy to prod"
    assert plan.job("build").steps[1].continue_on_error is False


@pytest.mark.parametrize(
    ("given", "path", "message"),
    [
        ({"targte": "prod"}, "inputs.targte", "did you mean 'target'?"),
        ({"target": "qa"}, "inputs.target", "'qa' is not one of the options: staging, prod"),
        ({"dry": "yes"}, "inputs.dry", "expected true or false"),
        ({"count": "many"}, "inputs.count", "expected a number"),
    ],
)
def test_resolve_inputs_rejects_bad_values(given: dict[str, str], path: str, message: str) -> None:
    with pytest.raises(WorkflowInvalid) as info:
        resolve_inputs(load(FULL), given)
    assert [e.path for e in info.value.errors] == [path]
    assert message in info.value.errors[0].message


def test_required_input_without_default() -> None:
    text = (
        "on:\n  workflow_dispatch:\n    inputs:\n      who: {required: true}\n"
        "jobs:\n  a:\n    runs-on: x\n    steps: [{run: 'echo ${{ inputs.who }}'}]\n"
    )
    with pytest.raises(WorkflowInvalid, match="input 'who' is required"):
        resolve_inputs(load(text), {})
    assert resolve_inputs(load(text), {"who": "me"}) == {"who": "me"}
    assert resolve_inputs(load(text), {"who": "3.10"}) == {"who": "3.10"}


def test_bytes_and_container_string() -> None:
    plan = load(
        b"jobs:\n  a:\n    container: alpine:3\n    steps:\n      - run: |\n"
        b"          \n          first line\n"
    )
    assert plan.jobs[0].image == "alpine:3"
    assert plan.jobs[0].runs_on is None
    assert plan.jobs[0].steps[0].name == "Run first line"


def test_job_order_is_topological_whatever_the_file_order() -> None:
    text = (
        "jobs:\n  c: {needs: [a, b], runs-on: x, steps: [{run: a}]}\n"
        "  b: {needs: a, runs-on: x, steps: [{run: a}]}\n  a: {runs-on: x, steps: [{run: a}]}\n"
    )
    assert [job.key for job in load(text).jobs] == ["a", "b", "c"]


def test_if_values_of_other_types() -> None:
    text = "jobs:\n  a:\n    if: false\n    runs-on: x\n    steps: [{run: a, if: true}]\n"
    job = load(text).jobs[0]
    assert (job.if_, job.steps[0].if_) == ("false", "true")


def test_valid_file_has_no_errors() -> None:
    assert validate(FULL) == []


def test_timeout_from_matrix() -> None:
    text = (
        "jobs:\n  a:\n    runs-on: x\n    timeout-minutes: ${{ matrix.t }}\n"
        "    strategy: {matrix: {t: [5, 10]}}\n    steps: [{run: a}]\n"
    )
    assert [job.timeout_minutes for job in load(text).jobs] == [5.0, 10.0]
    bad = text.replace("[5, 10]", "[soon]")
    (error,) = validate(bad)
    assert error.path == "jobs.a.timeout-minutes", error
    assert (error.line, error.column) == (4, 22)
    assert error.message == "a (soon): `timeout-minutes` is 'soon', not a number"


BUILD_WORKFLOW = """
on:
  workflow_dispatch:
    inputs:
      os: {type: choice, options: [linux, mac], default: linux}
      n: {type: number, default: 2}
jobs:
  test:
    name: test ${{ matrix.py }} on ${{ inputs.os }}
    strategy: {matrix: {py: ['3.11', '3.12']}}
    steps:
      - run: echo ${{ inputs.n }}
  deploy: {needs: test, steps: [{run: x}]}
"""


@pytest.mark.parametrize("given", [{}, {"os": "mac", "n": "5"}])
def test_load_for_build_is_load_with_resolved_inputs_in_one_pass(given: dict[str, str]) -> None:
    from workflow import load_for_build

    plan, inputs = load_for_build(BUILD_WORKFLOW, given)
    expected_inputs = resolve_inputs(load(BUILD_WORKFLOW), given)
    assert inputs == expected_inputs
    assert plan == load(BUILD_WORKFLOW, inputs=expected_inputs)
    assert plan.job("test (3.12)").name == f"test 3.12 on {inputs['os']}"


def test_load_for_build_rejects_bad_inputs_and_bad_files() -> None:
    from workflow import load_for_build

    with pytest.raises(WorkflowInvalid) as bad_input:
        load_for_build(BUILD_WORKFLOW, {"os": "windows"})
    assert bad_input.value.errors[0].path == "inputs.os"
    with pytest.raises(WorkflowInvalid) as bad_file:
        load_for_build("jobs: {a: {needs: b, steps: [{run: x}]}}", {})
    assert "b" in bad_file.value.errors[0].message
