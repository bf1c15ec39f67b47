"""Validation errors: every error at once, with path, exact line and column, and a
message that says what to do."""

from __future__ import annotations

import pytest

from workflow import WorkflowError, WorkflowInvalid, load, validate


def errors_of(text: str) -> list[tuple[int, int, str, str]]:
    return [(e.line, e.column, e.path, e.message) for e in validate(text)]


def one(text: str) -> WorkflowError:
    found = validate(text)
    assert len(found) == 1, found
    return found[0]


BAD = """\
name: bad
on: push
jobs:
  build:
    runs-on: ubuntu-latest
    services:
      db: {image: postgres}
    steps:
      - uses: actions/setup-python@v5
      - run: echo ${{ secrets.TOKEN }}
      - run: echo "${{ matrx.os }}"
  test:
    needs: [build, biuld]
    if: steps.x.outputs.y
    runs-on: x
    timeout: 4
    steps:
      - run: echo ${{ github.sha == }}
"""


def test_all_errors_at_once_with_positions() -> None:
    assert errors_of(BAD) == [
        (
            6,
            5,
            "jobs.build.services",
            "service containers (`services`) are not supported: "
            "start the service in a step, or use a container image that bundles it",
        ),
        (
            9,
            15,
            "jobs.build.steps[0].uses",
            "`uses: actions/setup-python@v5` is not "
            "supported: use a `run` step, or a container image that has Python",
        ),
        (
            10,
            23,
            "jobs.build.steps[1].run",
            "the `secrets` context is not supported: pass values as build inputs (`inputs.<name>`)",
        ),
        (11, 24, "jobs.build.steps[2].run", "unknown context 'matrx' — did you mean 'matrix'?"),
        (13, 20, "jobs.test.needs[1]", "unknown job 'biuld' — did you mean 'build'?"),
        (
            14,
            9,
            "jobs.test.if",
            "the `steps` context is not available here (available: github, inputs, needs)",
        ),
        (16, 5, "jobs.test.timeout", "unknown key 'timeout' — did you mean 'timeout-minutes'?"),
        (18, 34, "jobs.test.steps[0].run", "Unexpected end of expression: '=='"),
    ]


def test_load_raises_with_every_error_sorted() -> None:
    with pytest.raises(WorkflowInvalid) as info:
        load(BAD)
    assert len(info.value.errors) == 8
    assert list(info.value.errors) == sorted(info.value.errors)
    assert "(and 7 more)" in str(info.value)


def test_cycle_is_reported_with_its_path() -> None:
    text = """\
jobs:
  a:
    needs: c
    runs-on: x
    steps: [{run: a}]
  b:
    needs: [a]
    runs-on: x
    steps: [{run: a}]
  c:
    needs: b
    runs-on: x
    steps: [{run: a}]
"""
    assert errors_of(text) == [(3, 12, "jobs.a.needs", "dependency cycle: a → c → b → a")]


def test_self_dependency() -> None:
    error = one("jobs:\n  a:\n    needs: a\n    runs-on: x\n    steps: [{run: a}]\n")
    assert (error.line, error.column, error.message) == (3, 12, "job 'a' cannot need itself")


def test_duplicate_keys_are_errors() -> None:
    text = "jobs:\n  a:\n    runs-on: x\n    steps: [{run: a}]\n    env:\n      X: 1\n      X: 2\n"
    error = one(text)
    assert (error.line, error.column, error.path) == (7, 7, "jobs.a.env.X")
    assert "duplicate key 'X' (first defined at line 6, column 7)" in error.message


def test_duplicate_job_ids_are_errors() -> None:
    text = "jobs:\n  a:\n    runs-on: x\n    steps: [{run: a}]\n  a:\n    runs-on: y\n"
    assert one(text).path == "jobs.a" and one(text).line == 5


@pytest.mark.parametrize(
    ("snippet", "path", "message"),
    [
        ("    environment: prod\n", "jobs.a.environment", "deployment environments"),
        ("    uses: org/repo/.github/workflows/x.yml@v1\n", "jobs.a.uses", "reusable workflow"),
        ("    secrets: inherit\n", "jobs.a.secrets", "build inputs"),
        (
            "    container: {image: x, options: --cpus 2}\n",
            "jobs.a.container.options",
            "use the job's `resources`",
        ),
        ("    runs-on: {group: big}\n", "jobs.a.runs-on", "runner groups"),
        ("    resources: {cpu: lots}\n", "jobs.a.resources.cpu", "not a Kubernetes quantity"),
        ("    strategy: {matrix: {x: []}}\n", "jobs.a.strategy.matrix.x", "has no values"),
        (
            "    strategy: {matrix: '${{ fromJSON(needs.b.outputs.m) }}'}\n",
            "jobs.a.strategy.matrix",
            "dynamic matrices are not supported",
        ),
        ("    timeout-minutes: -1\n", "jobs.a.timeout-minutes", "positive number"),
        ("    continue-on-error: maybe\n", "jobs.a.continue-on-error", "expected true, false"),
        ("    name: ${{ hashFiles('x') }}\n", "jobs.a.name", "hashFiles() is not supported"),
        ("    name: ${{ success() }}\n", "jobs.a.name", "can only be used in `if:`"),
        ("    name: ${{ startwith('a', 'b') }}\n", "jobs.a.name", "startwith"),
        ("    if: ${{ a }} && ${{ b }}\n", "jobs.a.if", "mixes `${{ }}` with other text"),
        ("    env: ${{ fromJSON(inputs.e) }}\n", "jobs.a.env", "a whole `env` computed"),
    ],
)
def test_unsupported_and_wrong_job_keys(snippet: str, path: str, message: str) -> None:
    text = "jobs:\n  a:\n    runs-on: x\n    steps: [{run: a}]\n" + snippet
    if snippet.startswith("    runs-on"):
        text = "jobs:\n  a:\n    steps: [{run: a}]\n" + snippet
    found = validate(text)
    assert [e.path for e in found] == [path], found
    assert message in found[0].message
    assert found[0].line == 5 or snippet.startswith("    runs-on")


@pytest.mark.parametrize(
    ("step", "path", "message"),
    [
        ("{uses: docker://alpine}", "steps[0].uses", "set the job's `container`"),
        ("{uses: actions/cache@v4}", "steps[0].uses", "caches and artifacts"),
        ("{run: a, uses: actions/checkout@v4}", "steps[0].uses", "not both"),
        ("{name: nothing}", "steps[0]", "neither `run` nor `uses`"),
        ("{run: a, with: {x: 1}}", "steps[0].with", "only applies to `uses` steps"),
        ("{run: a, shell: cmd}", "steps[0].shell", "shell 'cmd' is not supported"),
        ("{run: a, id: 1abc}", "steps[0].id", "step id '1abc' is invalid"),
        ("{run: a, runs: b}", "steps[0].runs", "did you mean 'run'?"),
        ("{run: a, if: 'steps.x.outputs.y == 1 &&'}", "steps[0].if", "Unexpected end"),
        ("{run: a, if: 'secrets.X'}", "steps[0].if", "`secrets` context"),
    ],
)
def test_step_errors(step: str, path: str, message: str) -> None:
    found = validate(f"jobs:\n  a:\n    runs-on: x\n    steps:\n      - {step}\n")
    assert [e.path for e in found] == [f"jobs.a.{path}"], found
    assert message in found[0].message
    assert found[0].line == 5


def test_checkout_is_accepted_and_kept() -> None:
    plan = load(
        "jobs:\n  a:\n    runs-on: x\n    steps:\n"
        "      - uses: actions/checkout@v4\n        with: {fetch-depth: 0}\n"
    )
    step = plan.jobs[0].steps[0]
    assert (step.uses, step.run, dict(step.with_), step.name) == (
        "actions/checkout@v4",
        None,
        {"fetch-depth": "0"},
        "Run actions/checkout@v4",
    )


def test_duplicate_step_ids() -> None:
    found = validate(
        "jobs:\n  a:\n    runs-on: x\n    steps:\n      - {run: a, id: s}\n"
        "      - {run: b, id: s}\n"
    )
    assert [(e.line, e.path) for e in found] == [(6, "jobs.a.steps[1].id")]
    assert "used twice (first at line 5)" in found[0].message


def test_unknown_top_level_key_and_ignored_github_keys() -> None:
    text = (
        "on: {push: {branches: [main]}}\npermissions: read-all\nconcurrency: x\n"
        "run-name: r\nenvv: {}\njobs:\n  a:\n    runs-on: x\n    steps: [{run: a}]\n"
    )
    assert errors_of(text) == [(5, 1, "envv", "unknown key 'envv' — did you mean 'env'?")]


@pytest.mark.parametrize(
    ("job_id", "message"),
    [("1job", "job id '1job' is invalid"), ("a" * 101, "the limit is 100"), ("a.b", "is invalid")],
)
def test_job_id_rules(job_id: str, message: str) -> None:
    error = one(f"jobs:\n  {job_id}:\n    runs-on: x\n    steps: [{{run: a}}]\n")
    assert (error.line, error.column) == (2, 3)
    assert message in error.message


def test_expression_position_inside_literal_block() -> None:
    text = (
        "jobs:\n  a:\n    runs-on: x\n    steps:\n      - run: |\n          echo hi\n"
        "          echo ${{ gitub.sha }}\n"
    )
    assert errors_of(text) == [
        (7, 20, "jobs.a.steps[0].run", "unknown context 'gitub' — did you mean 'github'?")
    ]


def test_expression_position_inside_quoted_value_and_if() -> None:
    text = (
        "jobs:\n  a:\n    if: ${{ github.ref == 'x' && needz.b }}\n"
        "    runs-on: 'l-${{ maatrix.x }}'\n"
        "    steps: [{run: a}]\n"
    )
    assert errors_of(text) == [
        (3, 34, "jobs.a.if", "unknown context 'needz' — did you mean 'needs'?"),
        (4, 21, "jobs.a.runs-on", "unknown context 'maatrix' — did you mean 'matrix'?"),
    ]


def test_unterminated_template() -> None:
    error = one("jobs:\n  a:\n    runs-on: x\n    steps: [{run: 'echo ${{ github.sha'}]\n")
    assert (error.line, error.column) == (4, 25)  # where the `${{` opens
    assert "Unterminated" in error.message


def test_structure_errors() -> None:
    assert errors_of("- a\n- b\n")[0][3].startswith("expected a mapping with `jobs:`")
    assert errors_of("name: x\n") == [
        (1, 1, "jobs", "the workflow has no `jobs:`; add at least one job")
    ]
    assert errors_of("jobs:\n  a:\n    runs-on: x\n") == [
        (3, 5, "jobs.a.steps", "the job has no `steps:`; add at least one step")
    ]
    assert errors_of("jobs:\n  a:\n    steps: [{run: a}]\n") == []  # runs-on is optional


def test_yaml_errors_and_tags() -> None:
    (error,) = validate("jobs: [a\nb: c\n")
    assert error.line == 2 and error.message.startswith("invalid YAML")
    (error,) = validate("jobs: !!python/object/apply:os.system ['true']\n")
    assert (error.line, error.column) == (1, 7)
    assert "YAML tag '!!python/object/apply:os.system' is not supported" in error.message
    (error,) = validate("jobs: !custom x\n")
    assert "'!custom' is not supported" in error.message
    (error,) = validate("a: 1\n---\nb: 2\n")
    assert "exactly one YAML document" in error.message
    (error,) = validate("")
    assert "empty" in error.message
    base = "jobs:\n  j:\n    runs-on: x\n    steps: [{run: a}]\n    <<: {name: y}\n"
    assert (one(base).line, one(base).path) == (5, "jobs.j.<<")
    assert "merge keys ('<<') are not supported" in one(base).message


def test_yaml_1_1_quirks_do_not_apply() -> None:
    text = (
        "on: [push]\njobs:\n  a:\n    runs-on: x\n    env: {A: yes, B: 1:30, C: 3.10, "
        "D: true, E: 0x1f, F: ~}\n    steps: [{run: a}]\n"
    )
    env = dict(load(text).jobs[0].env)
    assert env == {"A": "yes", "B": "1:30", "C": "3.1", "D": "true", "E": "31", "F": ""}


@pytest.mark.parametrize(
    ("decl", "message"),
    [
        ("{type: choice}", "needs `options`"),
        ("{type: choice, options: [a, b], default: c}", "'c' is not one of the options"),
        ("{type: boolean, default: maybe}", "expected true or false"),
        ("{type: number, default: x}", "expected a number"),
        ("{type: colour}", "unknown input type 'colour'"),
        ("{required: sometimes}", "expected true or false"),
    ],
)
def test_input_declarations(decl: str, message: str) -> None:
    text = (
        f"on:\n  workflow_dispatch:\n    inputs:\n      x: {decl}\n"
        "jobs:\n  a:\n    runs-on: x\n    steps: [{run: a}]\n"
    )
    error = one(text)
    assert error.line == 4 and message in error.message
