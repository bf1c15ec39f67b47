"""What `validate` accepts, a job can prepare: the runner script renders.

Until a step runner replaces the shell compiler (workflow/shellcond.py), expressions
over run-time values support only some forms; `validate` refuses the others at the
position of the part that cannot run, and the property test holds the two together:
every generated workflow that `validate` accepts gets through `prepare_job`, the pure
preparation the JobActor does before it hands the job to its backend.
"""

from __future__ import annotations

import functools
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from actors.contexts import BuildContext, prepare_job
from workflow import load, validate
from workflow.expressions import parse
from workflow.markers import new_nonce
from workflow.shellcond import Compiler
from workflow.shellsupport import runtime_problem
from workflow.shellwords import ScriptError

HEAD = "on:\n  workflow_dispatch:\n    inputs:\n      name: {default: bob}\njobs:\n"


def job(steps: str, extra: str = "") -> str:
    first = "      - id: a\n        run: echo\n"
    return f"{HEAD}  j:\n    runs-on: x\n{extra}    steps:\n{first}{steps}"


def prepare(text: str) -> None:
    """Everything the JobActor does before the backend: raises when a job cannot start."""
    plan = load(text)
    build = BuildContext(
        build_id=1, number=1, attempt=1, pipeline="p", sha="abc",
        repository_url="https://example.com/o/r.git",
    )
    for spec in plan.jobs:
        needs = {k: {"result": "success", "outputs": {"x": "1"}} for k in spec.needs_ids}
        prepare_job(build, plan, spec, needs, "/work/ws", new_nonce())


# -- the examples of the issue: refused where they are written ----------------------------


@pytest.mark.parametrize(
    ("steps", "line", "column", "path", "words"),
    [
        (
            "      - run: echo ${{ format('{0}', steps.a.outputs.b) }}\n",
            11, 23, "jobs.j.steps[1].run", "format() over run-time values",
        ),
        (
            "      - run: x\n        env:\n          V: ${{ fromJSON(steps.a.outputs.b) }}\n",
            13, 18, "jobs.j.steps[1].env.V", "fromJSON() over run-time values",
        ),
        (
            "      - run: x\n        if: steps.a.outcome == 'success' && toJSON(steps.a)\n",
            12, 45, "jobs.j.steps[1].if", "toJSON() over run-time values",
        ),
        (
            "      - name: ${{ join(steps.a.outputs.*, ',') }}\n        run: x\n",
            11, 19, "jobs.j.steps[1].name", "join() over run-time values",
        ),
        (
            "      - run: echo ${{ case(job.status == 'success', 1, 2) }}\n",
            11, 23, "jobs.j.steps[1].run", "case() over run-time values",
        ),
        (
            "      - run: echo ${{ steps.a }}\n",
            11, 23, "jobs.j.steps[1].run", "'steps.a' is not supported yet at run time",
        ),
        (
            "      - run: echo ${{ steps.b.outputs.c }}\n",
            11, 23, "jobs.j.steps[1].run", "step id 'b' is not a step of this job",
        ),
        (
            "      - uses: actions/checkout@v4\n        with:\n"
            "          ref: refs/${{ steps.a.outputs.ref }}\n",
            13, 25, "jobs.j.steps[1].with.ref", "`with.ref` is needed before the job starts",
        ),
        (
            "      - uses: actions/checkout@v4\n        with:\n          submodules: true\n",
            13, 11, "jobs.j.steps[1].with.submodules",
            "actions/checkout input 'submodules' is not supported",
        ),
        (
            "      - uses: actions/checkout@v4\n        with:\n          path: ../up\n",
            13, 17, "jobs.j.steps[1].with.path", "'../up' is outside the workspace",
        ),
    ],
)
def test_validate_refuses_what_the_job_cannot_run_where_it_is_written(
    steps: str, line: int, column: int, path: str, words: str
) -> None:
    text = job(steps)
    [error] = validate(text)
    assert (error.line, error.column, error.path) == (line, column, path), error
    assert words in error.message
    # And the job would indeed stop before its first step.
    with pytest.raises(ValueError, match=r"not supported|not a step|outside the workspace"):
        _prepare_unchecked(text)


def _prepare_unchecked(text: str) -> None:
    """Preparation of a workflow that skipped `validate`'s run-time checks."""
    from unittest import mock

    with mock.patch("workflow.check_runtime"):
        prepare(text)


def test_the_message_says_it_is_not_supported_yet_at_run_time() -> None:
    [error] = validate(job("      - run: echo ${{ format('{0}', steps.a.outputs.b) }}\n"))
    assert "not supported yet at run time" in error.message
    assert "compared, combined with ! && || or passed to contains()" in error.message


def test_a_step_timeout_known_only_at_run_time_is_refused_at_its_key() -> None:
    text = job("      - run: x\n        timeout-minutes: ${{ steps.a.outputs.t }}\n")
    [error] = validate(text)
    assert (error.line, error.column, error.path) == (12, 26, "jobs.j.steps[1].timeout-minutes")
    assert error.message.startswith("`timeout-minutes` must be known when the build starts")


def test_job_outputs_are_checked_too() -> None:
    text = job("", "    outputs:\n      o: ${{ toJSON(steps.a.outputs) }}\n")
    [error] = validate(text)
    assert (error.line, error.column, error.path) == (9, 14, "jobs.j.outputs.o")


@pytest.mark.parametrize(
    "steps",
    [
        # The forms the compiler supports are accepted, and prepare.
        "      - run: echo ${{ steps.a.outputs.b }} ${{ steps.a.outcome }}\n",
        "      - if: steps.a.outputs.b == 'x' || contains(steps.a.outputs.b, 'y')\n"
        "        run: echo ${{ steps.a.outputs.b || 'default' }}\n",
        "      - if: ${{ !(job.status == 'success') && success() }}\n        run: echo\n",
        "      - run: echo\n        continue-on-error: ${{ steps.a.conclusion != 'failure' }}\n",
        # Run-time values in `env` after the first step: `format()` sees the value
        # known when the script is rendered, as documented.
        "      - run: echo ${{ format('{0}', env.X) }} ${{ env.X }}\n",
        # A function over values known when the job starts is folded.
        "      - run: echo ${{ format('{0}', github.sha) }} ${{ case(true, 1, 2) }}\n",
        "      - uses: actions/checkout@v4\n        with:\n          ref: ${{ inputs.name }}\n"
        "          persist-credentials: false\n",
        # A default name cut from a multi-line template is shown as written.
        "      - run: |\n          echo ${{\n            github.sha }}\n",
    ],
)
def test_what_validate_accepts_prepares(steps: str) -> None:
    text = job(steps)
    assert validate(text) == []
    prepare(text)


def test_the_checker_and_the_compiler_agree_on_the_examples() -> None:
    contexts: dict[str, Any] = {"github": {}, "env": {}, "inputs": {}}
    for expression, supported in [
        ("steps.a.outputs.b == 'x'", True),
        ("inputs.x || steps.a.outputs.b", True),
        ("format('{0}', steps.a.outputs.b)", False),
        ("steps.a.outputs", False),
        ("steps[inputs.x].outcome", False),
        ("steps.a.outputs[steps.a.outputs.b]", False),
    ]:
        tree = parse(expression, functions={"success"})
        problem = runtime_problem(tree, ["a"], runtime_env=False, condition=False)
        assert (problem is None) is supported, expression
        compiler = Compiler({"a": 0})
        if supported:
            compiler.template("${{ " + expression + " }}", contexts, "w")
        elif expression != "steps[inputs.x].outcome":  # refused here for any value
            with pytest.raises(ScriptError):
                compiler.template("${{ " + expression + " }}", contexts, "w")


# -- the property -----------------------------------------------------------------------------

LEAVES = {
    "github": ["github.sha", "github.ref_name", "github.workspace", "github.event"],
    "inputs": ["inputs.name"],
    "matrix": ["matrix.os"],
    "strategy": ["strategy.job-index"],
    "needs": ["needs.a.outputs.x", "needs.a.result"],
    "env": ["env.W", "env['J']"],
    "runner": ["runner.os"],
    "job": ["job.status"],
    "steps": ["steps.s0.outputs.x", "steps.s1.outcome", "steps.S0.conclusion", "steps.s0"],
}
LITERALS = ["'text'", "'it''s'", "1", "2.5", "true", "false", "null", "'{0}'"]


@functools.cache
def expressions(contexts: frozenset[str], status: bool) -> st.SearchStrategy[str]:
    names = [leaf for ctx in sorted(contexts) for leaf in LEAVES.get(ctx, [])]
    leaves = st.sampled_from(names + LITERALS)
    if status:
        leaves = leaves | st.sampled_from(["success()", "failure()", "always()", "cancelled()"])

    def extend(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        pair = st.tuples(inner, inner)
        predicate = st.one_of(  # always a boolean, as case() requires
            st.sampled_from(["true", "false"]),
            pair.map(lambda p: f"({p[0]}) == ({p[1]})"),
            pair.map(lambda p: f"contains({p[0]}, {p[1]})"),
            inner.map(lambda x: f"!({x})"),
        )
        return st.one_of(
            inner.map(lambda x: f"!({x})"),
            inner.map(lambda x: f"({x})"),
            st.tuples(inner, st.sampled_from(["==", "!=", "<", ">="]), inner).map(" ".join),
            st.tuples(inner, st.sampled_from(["&&", "||"]), inner).map(" ".join),
            st.tuples(st.sampled_from(["contains", "startsWith", "endsWith"]), pair).map(
                lambda t: f"{t[0]}({t[1][0]}, {t[1][1]})"
            ),
            pair.map(lambda p: f"format('{{0}}-{{1}}', {p[0]}, {p[1]})"),
            inner.map(lambda x: f"join({x}, '+')"),
            inner.map(lambda x: f"toJSON({x})"),
            inner.map(lambda x: f"fromJSON(toJSON({x}))"),
            st.tuples(predicate, inner, inner).map(lambda t: f"case({t[0]}, {t[1]}, {t[2]})"),
        )

    return st.recursive(leaves, extend, max_leaves=6)


@functools.cache
def template(contexts: frozenset[str]) -> st.SearchStrategy[str]:
    piece = st.one_of(
        st.sampled_from(["echo ", "x", " ", "{a}", "'q'", "\"d\"", "$HOME", "\\n"]),
        expressions(contexts, status=False).map(lambda e: "${{ " + e + " }}"),
    )
    return st.lists(piece, min_size=1, max_size=4).map("".join)


def quoted(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


ALL = frozenset(LEAVES)
JOB = frozenset({"github", "needs", "strategy", "matrix", "inputs"})
BEFORE_RUN = ALL - {"steps", "job"}  # half the step fields: more workflows accepted


@st.composite
def workflows(draw: st.DrawFn) -> str:
    def value(contexts: frozenset[str]) -> str:
        if contexts == ALL and draw(st.booleans()):
            contexts = BEFORE_RUN
        return quoted(draw(template(contexts)))

    def expression(status: bool) -> str:
        return draw(expressions(draw(st.sampled_from([ALL, BEFORE_RUN])), status))

    lines = [HEAD.replace("jobs:\n", "env:\n"), f"  W: {value(frozenset({'github', 'inputs'}))}\n"]
    lines.append("jobs:\n  a:\n    runs-on: x\n    outputs:\n      x: ${{ steps.s0.outputs.x }}\n")
    lines.append("    steps:\n      - id: s0\n        run: echo x=1 >> $GITHUB_OUTPUT\n")
    lines.append(f"  b:\n    needs: a\n    runs-on: {value(JOB)}\n")
    if draw(st.booleans()):
        lines.append(f"    container: {value(JOB)}\n")
    if draw(st.booleans()):
        lines.append("    strategy:\n      matrix:\n        os: [one, two]\n")
    lines.append(f"    env:\n      J: {value(JOB)}\n")
    lines.append(f"    outputs:\n      o: {value(ALL)}\n")
    lines.append("    steps:\n")
    for index in range(draw(st.integers(1, 3))):
        lines.append(f"      - id: s{index}\n        run: {value(ALL)}\n")
        if draw(st.booleans()):
            lines.append(f"        name: {value(ALL)}\n")
        if draw(st.booleans()):
            name = draw(st.sampled_from(["E", "E-2", "_e"]))
            lines.append(f"        env:\n          {name}: {value(ALL)}\n")
        if draw(st.booleans()):
            shell = draw(st.sampled_from(["bash", "sh", "python", "bash -e {0}", "bash '{0}"]))
            lines.append(f"        shell: {quoted(shell)}\n")
        if draw(st.booleans()):
            lines.append(f"        if: {quoted(expression(status=True))}\n")
        if draw(st.booleans()):
            flag = "${{ " + expression(status=False) + " }}"
            lines.append(f"        continue-on-error: {quoted(flag)}\n")
        if draw(st.booleans()):
            lines.append(f"        working-directory: {value(ALL)}\n")
    if draw(st.booleans()):
        checkout = "      - uses: actions/checkout@v4\n        with:\n"
        lines.append(f"{checkout}          ref: {value(ALL)}\n")
    return "".join(lines)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(workflows())
def test_every_workflow_validate_accepts_prepares(text: str) -> None:
    errors = validate(text)
    event("accepted" if not errors else errors[0].message[:40])
    if errors:
        return
    prepare(text)


def test_an_input_holding_a_template_is_text_not_evaluated_again() -> None:
    text = HEAD + "  j:\n    runs-on: x\n    steps:\n      - run: echo \"${{ inputs.name }}\"\n"
    value = "${{ github.sha }} and ${{ half"
    plan = load(text, inputs={"name": value})
    build = BuildContext(build_id=1, number=1, attempt=1, pipeline="p", sha="abc")
    script = prepare_job(build, plan, plan.jobs[0], {}, "/ws", new_nonce()).script
    assert f"echo \"{value}\"" in script  # pasted as written, as GitHub does
    assert "echo \"abc and" not in script


def test_an_env_name_the_shell_cannot_set_is_refused_at_its_key() -> None:
    text = HEAD.replace("jobs:\n", "env:\n  MY-VAR: 1\njobs:\n") + (
        "  j:\n    runs-on: x\n    env: {'1X': a, OK_1: b}\n    steps:\n"
        "      - run: echo\n        env:\n          a.b: c\n"
    )
    errors = validate(text)
    assert [(e.line, e.column, e.path) for e in errors] == [
        (6, 3, "env.MY-VAR"),
        (10, 11, "jobs.j.env.1X"),
        (14, 11, "jobs.j.steps[0].env.a.b"),
    ]
    assert all("not supported yet as an environment variable name" in e.message for e in errors)
    with pytest.raises(ValueError, match="not a valid environment variable name"):
        _prepare_unchecked(text)


def test_a_shell_the_script_cannot_split_is_refused_at_its_key() -> None:
    text = HEAD.replace("jobs:\n", "defaults:\n  run:\n    shell: \"bash '{0}\"\njobs:\n") + (
        "  j:\n    runs-on: x\n    steps:\n      - run: echo\n        shell: \"sh -c '{0}\"\n"
    )
    errors = validate(text)
    assert [(e.line, e.column, e.path) for e in errors] == [
        (7, 12, "defaults.run.shell"),
        (13, 16, "jobs.j.steps[0].shell"),
    ]
    assert all("cannot split shell" in e.message for e in errors)
    with pytest.raises(ValueError, match="cannot split shell"):
        _prepare_unchecked(text)
