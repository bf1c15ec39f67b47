"""Run-time expressions compiled to shell agree with the Python evaluator, and the
expressions that cannot run in the shell are refused with a clear error."""

from __future__ import annotations

import subprocess
from collections.abc import Mapping
from typing import Any

import pytest

from workflow.expressions import evaluate, to_bool, to_string
from workflow.markers import new_nonce
from workflow.model import JobSpec, Plan, StepSpec
from workflow.runner_template import EXPRESSION_HELPERS
from workflow.script import ScriptError, render_job_script
from workflow.shellcond import Compiler
from workflow.shellwords import sh_quote

EXPRESSIONS = [
    "steps.a.outputs.v",
    "!steps.a.outputs.v",
    "steps.a.outputs.v == 'abc'",
    "steps.a.outputs.v != 'abc'",
    "steps.a.outputs.v == 1",
    "steps.a.outputs.v == 0",
    "steps.a.outputs.v < 5",
    "steps.a.outputs.v >= 1",
    "steps.a.outputs.v > 'abb'",
    "steps.a.outputs.v <= 'ABC'",
    "'b' < steps.a.outputs.v",
    "steps.a.outputs.v == true",
    "steps.a.outputs.v == null",
    "steps.a.outputs.v || 'default'",
    "steps.a.outputs.v && 'yes'",
    "steps.a.outputs.w || 'default'",
    "!steps.a.outputs.w && steps.a.outputs.W == ''",
    "contains(steps.a.outputs.v, 'b')",
    "startsWith(steps.a.outputs.v, 'A')",
    "endsWith(steps.a.outputs.v, '')",
    "contains('xabcx', steps.a.outputs.v)",
    "contains(fromJSON('[\"abc\", 1]'), steps.a.outputs.v)",
    "contains(matrix.list, steps.a.outputs.v)",
    "steps.a.outcome == 'SUCCESS'",
    "steps.b.conclusion == 'success' && steps.b.outcome != 'success'",
    "steps.a.outputs.v == steps.a.outputs.V",
    "success() && steps.a.outputs.v",
    "failure() || steps.a.outputs.v == 'abc'",
    "always()",
    "cancelled()",
    "!cancelled() && !failure()",
    "job.status == 'success'",
    "job.status",
    "(steps.a.outputs.v == 'abc') == true",
    "(steps.a.outputs.v == 'abc') == 1",
    "(steps.a.outputs.v == 'abc') != (steps.a.outcome == 'success')",
    "(steps.a.outputs.v == 'abc') < (steps.a.outcome == 'success')",
    "steps.a.outputs.v == matrix.os",
    "matrix.os == 'linux' && steps.a.outputs.v",
    "false && steps.a.outputs.v",
    "steps.a.outputs.v || false",
    "!(steps.a.outputs.v || matrix.empty)",
    "steps['a'].outputs['v'] == 'abc'",
    "steps.a.outputs[matrix.key] == 'abc'",
    "steps.a.outputs.v == fromJSON('{}')",
    "steps.a.outputs.v != matrix.list",
    "steps.a.outputs.v < 'x' || steps.a.outputs.v > 2",
    "steps.a.outputs.v == NaN || steps.a.outputs.v != NaN",
    "steps.a.outputs.v < NaN || steps.a.outputs.v >= -Infinity",
]
VALUES = ["", "0", "1", "1.0", "abc", "ABC", " 12 ", "0x10", "true", "-1e2", "aBc"]
STATES = {"success": (0, 0), "failure": (1, 0), "cancelled": (0, 1)}


def _contexts(value: str, status: str) -> dict[str, Any]:
    return {
        "steps": {
            "a": {"outcome": "success", "conclusion": "success", "outputs": {"v": value}},
            "b": {"outcome": "failure", "conclusion": "success", "outputs": {}},
        },
        "job": {"status": status},
        "matrix": {"os": "linux", "list": ["abc", 1], "empty": "", "key": "V"},
    }


def _status_functions(status: str) -> Mapping[str, Any]:
    return {
        "success": lambda: status == "success",
        "failure": lambda: status == "failure",
        "cancelled": lambda: status == "cancelled",
        "always": lambda: True,
    }


def _run_compiled(value: str, status: str) -> list[tuple[str, str]]:
    """Every expression compiled as a condition and as a value, run in one shell."""
    static = {"matrix": _contexts(value, status)["matrix"]}
    compiler = Compiler({"a": 0, "b": 1})
    body = []
    for expression in EXPRESSIONS:
        setup, cond, _ = compiler.condition(expression, static, "test")
        body += [*setup, f"if {cond}; then printf '1'; else printf '0'; fi"]
        setup, word, _ = compiler.template("${{ " + expression + " }}", static, "test")
        body += [*setup, f"printf '|%s\\n' {word}"]
    fail, canc = STATES[status]
    state = [f"_cv_fail={fail}; _cv_canc={canc}"]
    state.append("_cv_oc_0=success; _cv_cc_0=success; _cv_oc_1=failure; _cv_cc_1=success")
    for (index, name), var in compiler.outputs.items():
        known = {(0, "V"): value}
        state.append(f"{var}={sh_quote(known.get((index, name), ''))}")
    script = "\n".join([EXPRESSION_HELPERS, *state, *body])
    out = subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=True)
    assert out.stderr == ""
    rows = out.stdout.split("\n")[:-1]
    assert len(rows) == len(EXPRESSIONS)
    return [(row[0], row[2:]) for row in rows]


@pytest.mark.parametrize(
    ("value", "status"),
    [(v, "success") for v in VALUES] + [("abc", "failure"), ("", "cancelled")],
)
def test_compiled_expressions_agree_with_the_evaluator(value: str, status: str) -> None:
    compiled = _run_compiled(value, status)
    contexts = _contexts(value, status)
    for expression, (truth, text) in zip(EXPRESSIONS, compiled, strict=True):
        expected = evaluate(expression, contexts, functions=_status_functions(status))
        assert (truth, text) == ("1" if to_bool(expected) else "0", to_string(expected)), (
            f"{expression!r} with v={value!r}, job {status}"
        )


def _job(*steps: StepSpec, **kw: Any) -> JobSpec:
    return JobSpec(key="j", job_id="j", name="j", steps=steps, **kw)


def _render(job: JobSpec, contexts: Mapping[str, Any] | None = None) -> str:
    return render_job_script(job, Plan("p", (job,)), contexts or {"matrix": {}}, new_nonce())


A = StepSpec(0, "a", id="a", run="true")


@pytest.mark.parametrize(
    ("step", "message"),
    [
        (
            StepSpec(1, "x", id="x", run="echo ${{ format('{0}', steps.a.outputs.v) }}"),
            "jobs.j.steps[1] ('x').run: 'format('{0}', steps.a.outputs.v)' is not supported "
            "at run time",
        ),
        (StepSpec(1, "x", run="echo ${{ toJSON(steps.a.outputs) }}"), "not supported at run time"),
        (StepSpec(1, "x", run="echo ${{ steps.*.outcome }}"), "not supported at run time"),
        (StepSpec(1, "x", run="echo", if_="steps.a.outputs"), "not supported at run time"),
        (
            StepSpec(1, "x", run="echo", if_="steps.nope.outcome == 'success'"),
            "jobs.j.steps[1].if: 'steps.nope.outcome == 'success'' refers to step id 'nope', "
            "which is not a step of this job (step ids: a)",
        ),
        (
            StepSpec(1, "x", run="echo", shell="${{ steps.a.outputs.shell }}"),
            "jobs.j.steps[1].shell: 'steps.a.outputs.shell' is not supported at run time: this "
            "field is needed before the job starts",
        ),
        (StepSpec(1, "x", run="echo ${{ secrets.X }}"), "Unrecognized named-value: 'secrets'"),
        (StepSpec(1, "x", run="echo", env={"BAD-NAME": "1"}), "'BAD-NAME' is not a valid"),
        (StepSpec(1, "x", uses="actions/setup-python@v5"), "only actions/checkout can be used"),
        (
            StepSpec(1, "x", uses="actions/checkout@v4", with_={"token": "t"}),
            "jobs.j.steps[1].with.token: actions/checkout input 'token' is not supported",
        ),
        (StepSpec(1, "x", id="A", run="echo"), "duplicate step id 'A'"),
        (StepSpec(1, "x", run="echo", shell="cmd"), "only exists on Windows"),
        (StepSpec(1, "x", run="echo", timeout_minutes=0), "must be a positive number"),
        (StepSpec(1, "x", run="echo ${{ matrix.x"), "Unterminated expression"),
    ],
)
def test_unsupported_inputs_are_refused_naming_the_step(step: StepSpec, message: str) -> None:
    with pytest.raises(ScriptError) as info:
        _render(_job(A, step))
    assert message in str(info.value)


def test_job_output_errors_name_the_output() -> None:
    job = _job(A, outputs={"o": "${{ join(steps.a.outputs.v) }}"})
    with pytest.raises(ScriptError, match=r"jobs\.j\.outputs\.o: .* not supported at run time"):
        _render(job)


def test_values_known_at_render_time_are_folded_into_the_script() -> None:
    job = _job(
        StepSpec(0, "n", run="echo ${{ matrix.os }} ${{ format('{0}-{1}', 'a', needs.p.result) }}")
    )
    script = _render(job, {"matrix": {"os": "plan9"}, "needs": {"p": {"result": "success"}}})
    assert "'echo plan9 a-success'" in script
    assert "_cv_cmp" not in script.split("EXPRESSION_HELPERS")[-1].split("# step 0")[-1]
