"""GitHub's own workflow-parser rules, held against `validate`: what GitHub refuses is
refused here at the same place, what GitHub accepts is accepted (and runs), and GitHub
features outside Conveyor's subset get a "not supported" message naming them.

The reference is GitHub's parser (actions/runner `WorkflowParser`, actions/languageservices
`workflow-v1.0.json`): the identifier rules of its IdBuilder, the 50-level depth limit of
its template reader, the format it requires of `uses:`, the `permissions`, `concurrency`
and `on.workflow_call` shapes of its schema.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.test_script import SHELLS, run_job
from workflow import WorkflowInvalid, load, validate

Found = list[tuple[int, int, str, str]]


def errors_of(text: str) -> Found:
    return [(e.line, e.column, e.path, e.message) for e in validate(text)]


def job_with(*lines: str, steps: str = "    steps: [{run: a}]\n") -> str:
    return "jobs:\n  a:\n" + "".join(f"    {line}\n" for line in lines) + steps


# -- a refused `uses:` does not stop the checks of the rest of its step ---------------


def test_a_refused_uses_leaves_the_rest_of_the_step_checked() -> None:
    text = (
        "jobs:\n  a:\n    steps:\n"
        "      - uses: actions/setup-node@v4\n"
        "        env: {X: '${{ secrets.T }}'}\n"
        "        if: ${{ foo.bar }}\n"
        "        with: {a: '${{ bogus.x }}'}\n"
        "        timeout-minutes: -1\n"
    )
    assert [(line, path) for line, _c, path, _m in errors_of(text)] == [
        (4, "jobs.a.steps[0].uses"),
        (5, "jobs.a.steps[0].env.X"),
        (6, "jobs.a.steps[0].if"),
        (7, "jobs.a.steps[0].with.a"),
        (8, "jobs.a.steps[0].timeout-minutes"),
    ]


def test_a_step_with_run_and_uses_is_still_checked_whole() -> None:
    text = (
        "jobs:\n  a:\n    steps:\n"
        "      - {run: a, uses: actions/checkout@v4, env: {X: '${{ secretz.T }}'}}\n"
    )
    assert [path for _l, _c, path, _m in errors_of(text)] == [
        "jobs.a.steps[0].uses",
        "jobs.a.steps[0].env.X",
    ]


# -- numbers ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "path", "column"),
    [
        ("    timeout-minutes: " + "9" * 400, "jobs.a.timeout-minutes", 22),
        ("    strategy: {matrix: {x: [" + "9" * 400 + "]}}", "jobs.a.strategy.matrix.x[0]", 29),
        ("    timeout-minutes: -" + "9" * 5000, "jobs.a.timeout-minutes", 22),
        ("    timeout-minutes: 1e400", "jobs.a.timeout-minutes", 22),
        ("    env: {A: 0x" + "f" * 300 + "}", "jobs.a.env.A", 14),
    ],
)
def test_numbers_out_of_githubs_range_are_one_clear_error(
    value: str, path: str, column: int
) -> None:
    (found,) = errors_of("jobs:\n  a:\n" + value + "\n    steps: [{run: a}]\n")
    assert found[:3] == (3, column, path)
    assert "is out of range: numbers are 64-bit floating point" in found[3]


def test_long_numbers_within_range_are_numbers() -> None:
    plan = load(job_with("timeout-minutes: " + "0" * 5000 + "7"))
    assert plan.jobs[0].timeout_minutes == 7


def test_a_timeout_github_cannot_hold_is_refused_written_or_computed() -> None:
    assert errors_of(job_with("timeout-minutes: 1e300")) == [
        (3, 22, "jobs.a.timeout-minutes", "1e300 is too large; the limit is 2,147,483,647")
    ]
    step = "    steps:\n      - run: a\n        timeout-minutes: 2147483648\n"
    assert [path for _l, _c, path, _m in errors_of(job_with(steps=step))] == [
        "jobs.a.steps[0].timeout-minutes"
    ]
    computed = "on:\n  workflow_dispatch:\n    inputs:\n      t: {default: '1e300'}\n"
    computed += job_with("timeout-minutes: ${{ inputs.t }}")
    (error,) = validate(computed)
    assert "the limit is 2,147,483,647" in error.message
    assert load(job_with("timeout-minutes: 2147483647")).jobs[0].timeout_minutes == 2**31 - 1


# -- identifiers -----------------------------------------------------------------------


def test_job_ids_are_unique_ignoring_case() -> None:
    text = "jobs:\n  my-job:\n    steps: [{run: a}]\n  MY-JOB:\n    steps: [{run: b}]\n"
    ((line, column, path, message),) = errors_of(text)
    assert (line, column, path) == (4, 3, "jobs.MY-JOB")
    assert "'my-job' is already defined at line 2, column 3" in message
    assert "ignoring case" in message


def test_every_mapping_compares_keys_ignoring_case_as_github_does() -> None:
    found = errors_of(job_with("env: {PATH: a, Path: b}"))
    assert [(line, path) for line, _c, path, _m in found] == [(3, "jobs.a.env.Path")]


def test_step_ids_are_unique_ignoring_case() -> None:
    steps = "    steps:\n      - {id: build, run: a}\n      - {id: Build, run: b}\n"
    ((line, column, path, message),) = errors_of(job_with(steps=steps))
    assert (line, column, path) == (5, 14, "jobs.a.steps[1].id")
    assert message == (
        "step id 'Build' is used twice (first at line 4 as 'build'); "
        "step ids must be unique, ignoring case"
    )


def test_ids_starting_with_two_underscores_are_reserved() -> None:
    text = "jobs:\n  __a:\n    steps:\n      - {id: __s, run: a}\n      - {run: '${{ x }}'}\n"
    assert errors_of(text) == [
        (2, 3, "jobs.__a", "job id '__a' is invalid: ids starting with '__' are reserved"),
        (4, 14, "jobs.__a.steps[0].id", "step id '__s' is invalid: ids starting with '__' are "
         "reserved"),
        # the job is still checked: every error at once
        (5, 20, "jobs.__a.steps[1].run", "unknown context 'x'"),
    ]
    assert validate("jobs:\n  _a:\n    steps: [{id: _s, run: a}]\n") == []


# -- nesting -----------------------------------------------------------------------------


def nested(levels: int) -> str:
    """A matrix whose value nests lists so that the file holds ``levels`` in all (the
    root mapping, jobs, the job, strategy, matrix and the variable's list are 6)."""
    inner = levels - 6
    return job_with("strategy:", "  matrix:", "    x: [" + "[" * inner + "1" + "]" * inner + "]")


def test_matrix_nesting_stops_at_githubs_fifty_levels() -> None:
    assert validate(nested(50)) == []
    (error,) = validate(nested(51))
    assert (error.line, error.column) == (5, 57)  # the 51st `[`
    assert error.message.startswith("maximum object depth exceeded")
    assert "50 levels" in error.message


def test_an_alias_counts_as_deep_as_where_it_is_used() -> None:
    anchored = "x: &deep " + "[" * 10 + "]" * 10 + "\n"
    wrap = 36  # 4 levels (root, jobs, a, env) + 36 lists + the alias's 10 = 50
    text = anchored + job_with("env: {A: " + "[" * wrap + "*deep" + "]" * wrap + "}")
    assert "maximum object depth" not in str(validate(text))
    text = anchored + job_with("env: {A: " + "[" * (wrap + 1) + "*deep" + "]" * (wrap + 1) + "}")
    (error,) = validate(text)
    assert error.message.startswith("maximum object depth exceeded")


# -- uses ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "uses", ["actions/checkout", "actions/checkout@", "actions/checkout@v4@v5", "actions//@v4"]
)
def test_uses_without_a_well_formed_ref_is_refused(uses: str) -> None:
    found = errors_of(job_with(steps=f"    steps:\n      - uses: {uses}\n"))
    assert found[0] == (
        4,
        15,
        "jobs.a.steps[0].uses",
        f"Expected format {{org}}/{{repo}}[/path]@ref. Actual '{uses}'",
    )
    assert len(found) == 1 or "is not supported" in found[1][3]  # not checkout at all


def test_uses_format_and_support_are_both_reported() -> None:
    found = errors_of(job_with(steps="    steps:\n      - uses: actions/setup-go\n"))
    assert [message.split(".")[0] for _l, _c, _p, message in found] == [
        "Expected format {org}/{repo}[/path]@ref",
        "`uses: actions/setup-go` is not supported: use a `run` step, or a container image "
        "that has Go",
    ]
    assert validate(job_with(steps="    steps:\n      - uses: actions/checkout@v4\n")) == []


# -- keys Conveyor ignores, still checked as GitHub checks them -----------------------------

VALID_IGNORED = [
    "permissions: read-all",
    "permissions: write-all",
    "permissions: {}",
    "permissions: {contents: read, id-token: write, models: read, pull-requests: none}",
    "concurrency: ci-${{ github.ref }}-${{ inputs.x }}-${{ vars.Y }}",
    "concurrency: {group: x, cancel-in-progress: true, queue: max}",
    "concurrency:\n  group: ${{ github.workflow }}\n"
    "  cancel-in-progress: ${{ github.ref != 'refs/heads/main' }}",
    "run-name: Deploy by @${{ github.actor }}",
    "description: What this workflow does",
    "on:\n  workflow_call:\n    inputs:\n      x: {type: string, required: true, default: "
    "'${{ github.ref }}'}\n      n: {type: number, default: 3}\n    secrets:\n      token:\n"
    "      other: {required: false, description: d}\n    outputs:\n"
    "      o: {value: '${{ jobs.a.outputs.o }}', description: d}",
    "on: [push, workflow_call]",
    "on: {workflow_call: null}",
]


@pytest.mark.parametrize("snippet", VALID_IGNORED)
def test_valid_values_of_ignored_workflow_keys_are_accepted(snippet: str) -> None:
    assert validate(snippet + "\n" + job_with()) == []


INVALID_IGNORED = [
    ("permissions: reed-all", "permissions", "did you mean 'read-all'"),
    ("permissions: {contents: banana}", "permissions.contents", "'banana' is not a permission"),
    ("permissions: {id-token: read}", "permissions.id-token", "(use write or none)"),
    ("permissions: {models: write}", "permissions.models", "(use read or none)"),
    ("permissions: {content: read}", "permissions.content", "did you mean 'contents'"),
    ("permissions: ${{ inputs.p }}", "permissions", "expressions (`${{ }}`) are not allowed"),
    ("permissions: [read]", "permissions", "expected read-all, write-all or a mapping"),
    ("concurrency: ${{ matrix.x }}", "concurrency", "`matrix` context is not available"),
    ("concurrency: ${{ secrets.X }}", "concurrency", "`secrets` context is not supported"),
    ("concurrency: {group: x, cancel-in-progress: maybe}", "concurrency.cancel-in-progress",
     "expected true, false"),
    ("concurrency: {cancel-in-progress: true}", "concurrency.group", "needs a `group`"),
    ("concurrency: {group: x, queue: all}", "concurrency.queue", "'all' is not a concurrency"),
    ("concurrency: {group: x, cancel: true}", "concurrency.cancel", "unknown key 'cancel'"),
    ("concurrency: " + "g" * 401, "concurrency", "401 characters long; GitHub's limit is 400"),
    ("run-name: ${{ steps.x.outputs.y }}", "run-name", "`steps` context is not available"),
    ("description: ${{ github.ref }}", "description", "are not allowed here"),
    ("on:\n  workflow_call:\n    inputs:\n      x: {required: true}",
     "on.workflow_call.inputs.x.type", "needs a `type`"),
    ("on:\n  workflow_call:\n    inputs:\n      x: {type: choice}",
     "on.workflow_call.inputs.x.type", "unknown input type 'choice'"),
    ("on:\n  workflow_call:\n    inputs:\n      x: {type: string, default: '${{ env.X }}'}",
     "on.workflow_call.inputs.x.default", "`env` context is not available"),
    ("on:\n  workflow_call:\n    secrets:\n      s: {required: maybe}",
     "on.workflow_call.secrets.s.required", "expected true or false"),
    ("on:\n  workflow_call:\n    outputs:\n      o: {description: d}",
     "on.workflow_call.outputs.o.value", "needs a `value`"),
    ("on:\n  workflow_call:\n    outputs:\n      o: {value: '${{ steps.s.outputs.x }}'}",
     "on.workflow_call.outputs.o.value", "`steps` context is not available"),
    ("on:\n  workflow_call:\n    input: {}", "on.workflow_call.input", "did you mean 'inputs'"),
    ("on:\n  workflow_call:\n    inputs:", "on.workflow_call.inputs", "found nothing (null)"),
]


@pytest.mark.parametrize(("snippet", "path", "message"), INVALID_IGNORED)
def test_invalid_values_of_ignored_workflow_keys_are_refused(
    snippet: str, path: str, message: str
) -> None:
    found = errors_of(snippet + "\n" + job_with())
    assert [p for _l, _c, p, _m in found] == [path], found
    assert message in found[0][3]


@pytest.mark.parametrize(
    ("snippet", "path", "message"),
    [
        ("permissions: {issues: writ}", "jobs.a.permissions.issues", "'writ' is not a"),
        ("concurrency: ${{ steps.x.outputs.y }}", "jobs.a.concurrency", "`steps` context"),
        ("concurrency: ''", "jobs.a.concurrency", "the concurrency group name is empty"),
        ("cancel-timeout-minutes: soon", "jobs.a.cancel-timeout-minutes", "expected a number"),
        ("cancel-timeout-minutes: ${{ steps.x }}", "jobs.a.cancel-timeout-minutes", "`steps`"),
    ],
)
def test_ignored_job_keys_are_checked(snippet: str, path: str, message: str) -> None:
    found = errors_of(job_with(snippet))
    assert [p for _l, _c, p, _m in found] == [path], found
    assert message in found[0][3]


def test_job_concurrency_may_use_the_matrix_and_needs() -> None:
    text = (
        "jobs:\n  b:\n    steps: [{run: b}]\n  a:\n    needs: b\n"
        "    strategy: {matrix: {v: [1, 2]}}\n"
        "    concurrency: {group: '${{ matrix.v }}-${{ needs.b.result }}-${{ strategy.job-index }}'"
        ", cancel-in-progress: true}\n"
        "    permissions: {contents: write}\n    steps: [{run: a}]\n"
    )
    assert validate(text) == []


# -- what GitHub accepts is accepted ------------------------------------------------------


def test_cancel_timeout_minutes_is_accepted_without_a_misleading_hint() -> None:
    assert validate(job_with("cancel-timeout-minutes: 5")) == []
    assert validate(job_with("cancel-timeout-minutes: ${{ matrix.t || 5 }}")) == []


def test_an_empty_workflow_dispatch_inputs_is_no_inputs() -> None:
    plan = load("on:\n  workflow_dispatch:\n    inputs:\n" + job_with())
    assert dict(plan.inputs) == {}


@pytest.mark.parametrize(
    "shell",
    [
        "${{ matrix.sh }}",
        "${{ strategy.job-index == 0 && 'bash' || 'sh' }}",
        "${{ inputs.sh }}",
        "${{ env.SH }}",
        "${{ needs.b.outputs.sh }}",
        "${{ github.event_name == 'x' && 'sh' || 'bash' }}",
    ],
)
def test_job_default_shell_may_be_an_expression(shell: str) -> None:
    text = (
        "on:\n  workflow_dispatch:\n    inputs:\n      sh: {default: bash}\n"
        "jobs:\n  b:\n    steps: [{run: b}]\n  a:\n    needs: b\n"
        "    strategy: {matrix: {sh: [bash]}}\n"
        f'    defaults:\n      run:\n        shell: "{shell}"\n    steps: [{{run: a}}]\n'
    )
    assert validate(text) == []


def test_default_shell_expressions_keep_githubs_limits() -> None:
    job = "    defaults: {run: {shell: '${{ steps.s.outputs.sh }}'}}"
    assert [p for _l, _c, p, _m in errors_of(job_with(job.strip()))] == [
        "jobs.a.defaults.run.shell"
    ]
    # GitHub allows no expression in the workflow's own defaults, nor in a step's shell.
    text = "defaults: {run: {shell: '${{ inputs.sh }}'}}\n" + job_with()
    assert [p for _l, _c, p, _m in errors_of(text)] == ["defaults.run.shell"]
    step = "    steps: [{run: a, shell: '${{ matrix.sh }}'}]\n"
    assert [p for _l, _c, p, _m in errors_of(job_with(steps=step))] == ["jobs.a.steps[0].shell"]


def test_empty_run_and_empty_if_are_accepted() -> None:
    text = "jobs:\n  a:\n    if: ''\n    steps:\n      - run: ''\n        if: ' '\n      - run:\n"
    plan = load(text)
    job = plan.jobs[0]
    assert job.if_ is None and [s.if_ for s in job.steps] == [None, None]
    assert [(s.run, s.name) for s in job.steps] == [("", "Run"), ("", "Run")]


@pytest.mark.parametrize("shell", SHELLS[:1], ids=["sh"])
def test_what_is_accepted_runs(shell: list[str], tmp_path: Path) -> None:
    plan = load(
        "jobs:\n  a:\n    if: ''\n    strategy: {matrix: {sh: [python]}}\n"
        "    defaults:\n      run:\n        shell: ${{ matrix.sh }}\n"
        "    steps:\n      - run: ''\n        shell: sh\n"
        "      - run: print('from', 'python')\n        if: ''\n"
    )
    (job,) = plan.jobs
    result = run_job(shell, job, tmp_path, {"matrix": dict(job.matrix)}, plan=plan)
    assert result.rc == 0, result
    assert result.lines == ["from python"]
    assert result.outcomes() == [("success", "success"), ("success", "success")]


# -- GitHub features outside the subset: "not supported", naming them ----------------------


@pytest.mark.parametrize(
    ("text", "path"),
    [
        (job_with("env:", "  ${{ insert }}: {A: b}"), "jobs.a.env.${{ insert }}"),
        (job_with("${{ insert }}: {name: x}"), "jobs.a.${{ insert }}"),
        (job_with("strategy: {matrix: {'${{ insert }}': {x: [1]}}}"),
         "jobs.a.strategy.matrix.${{ insert }}"),
    ],
)
def test_insert_directives_are_not_supported(text: str, path: str) -> None:
    ((_line, _column, found_path, message),) = [
        e for e in errors_of(text) if "matrix is empty" not in e[3]
    ]
    assert found_path == path
    assert message.startswith("`${{ insert }}` (inserting the keys of an expression's mapping")
    assert "is not supported" in message


def test_a_list_inside_steps_is_not_spliced() -> None:
    steps = "    steps:\n      - [{run: a}, {run: b}]\n      - run: c\n"
    assert errors_of(job_with(steps=steps)) == [
        (4, 9, "jobs.a.steps[0]", "a list inside `steps` is not spliced into it (GitHub does "
         "not either): write its steps out one by one")
    ]


def test_a_matrix_item_giving_a_list_to_splice_is_not_supported() -> None:
    text = (
        "on:\n  workflow_dispatch:\n    inputs:\n      more: {default: '[\"b\", \"c\"]'}\n"
        + job_with("strategy:", "  matrix:", "    x: [a, '${{ fromJSON(inputs.more) }}']")
    )
    ((line, column, path, message),) = errors_of(text)
    assert (line, column, path) == (9, 9, "jobs.a.strategy.matrix.x")
    assert "spliced into its list on GitHub; splicing is not supported" in message
    with pytest.raises(WorkflowInvalid):
        load(text, inputs={"more": '["b"]'})
    plan = load(text, inputs={"more": '"b"'})  # a single value is an ordinary item
    assert [job.matrix["x"] for job in plan.jobs] == ["a", "b"]


@pytest.mark.parametrize(
    ("step", "key", "message"),
    [
        ("parallel:\n          - run: a\n          - run: b", "parallel",
         "parallel step groups (`parallel:`) are not supported"),
        ("{run: a, background: true}", "background", "background steps are not supported"),
        ("{wait: s}", "wait", "background steps are not supported"),
        ("{wait-all: true}", "wait-all", "background steps are not supported"),
        ("{cancel: s}", "cancel", "background steps are not supported"),
    ],
)
def test_step_features_outside_the_subset(step: str, key: str, message: str) -> None:
    found = errors_of(job_with(steps=f"    steps:\n      - {step}\n"))
    assert [p for _l, _c, p, _m in found] == [f"jobs.a.steps[0].{key}"], found
    assert message in found[0][3]


def test_a_reusable_workflow_job_gets_one_error_and_no_noise() -> None:
    text = (
        "jobs:\n  a:\n    uses: org/repo/.github/workflows/x.yml@v1\n    with: {a: b}\n"
        "    secrets: inherit\n"
    )
    ((line, column, path, message),) = errors_of(text)
    assert (line, column, path) == (3, 5, "jobs.a.uses")
    assert "reusable workflows are not supported" in message
    # without `uses`, `with` and `secrets` are refused for what they are
    found = errors_of(job_with("with: {a: b}"))
    assert [p for _l, _c, p, _m in found] == ["jobs.a.with"]
