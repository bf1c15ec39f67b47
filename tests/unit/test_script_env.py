"""``env.<name>`` in a step sees what earlier steps wrote to ``$GITHUB_ENV``, with
GitHub's precedence (workflow env < job env < ``$GITHUB_ENV`` < the step's own env).
Every test runs under each POSIX shell of the machine."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.unit.test_script import SHELLS, make_job, run_job, step
from workflow.markers import StepStarted, new_nonce
from workflow.model import Plan
from workflow.script import render_job_script


@pytest.fixture(params=SHELLS, ids=lambda argv: " ".join(Path(a).name for a in argv))
def shell(request: pytest.FixtureRequest) -> list[str]:
    argv: list[str] = request.param
    return argv


# Printed through a quoted here-document, so that the step prints the pasted text as it
# is (pasting a template's value into `run` is GitHub's behaviour, not injection here).
def _show(label: str, template: str) -> str:
    return f"cat <<'CV_TEST_END'\n{label}=[{template}]\nCV_TEST_END\n"


def test_reported_scenario_github_env_reaches_run_and_if(shell: list[str], tmp_path: Path) -> None:
    job = make_job(
        step(0, 'echo "X=1" >> $GITHUB_ENV'),
        step(1, 'echo "x=[${{ env.X }}] shell=[$X]"'),
        step(2, "echo ran", if_="env.X == '1'"),
        step(3, "echo also", if_="${{ env.X != '1' }}"),
    )
    result = run_job(shell, job, tmp_path)
    assert "x=[1] shell=[1]" in result.lines
    assert "ran" in result.lines and "also" not in result.lines
    assert [o for o, _ in result.outcomes()] == ["success", "success", "success", "skipped"]


def test_if_compares_github_env_values_ignoring_case(shell: list[str], tmp_path: Path) -> None:
    job = make_job(
        step(0, 'echo "KIND=Release" >> "$GITHUB_ENV"'),
        step(1, "echo same", if_="env.KIND == 'RELEASE' && startsWith(env['KIND'], 'rel')"),
        step(2, "echo differ", if_="env.KIND == 'debug'"),
    )
    result = run_job(shell, job, tmp_path, {"env": {"KIND": "debug"}})
    assert "same" in result.lines and "differ" not in result.lines


def test_precedence_step_env_over_github_env_over_job_env(shell: list[str], tmp_path: Path) -> None:
    job = make_job(
        step(0, _show("s0", "${{ env.X }}") + 'echo "X=gh" >> "$GITHUB_ENV"'),
        step(1, _show("s1", "${{ env.X }}") + 'echo "s1 shell=[$X]"', env={"X": "step"}),
        step(
            2,
            _show("s2", "${{ env.X }}/${{ env.Y }}/${{ env.J }}") + 'echo "s2 shell=[$Y]"',
            env={"Y": "${{ env.X }}-y"},
        ),
        step(3, "echo step-if", env={"X": "step"}, if_="env.X == 'step'"),
    )
    contexts = {"env": {"X": "job", "J": "job-only"}}
    result = run_job(shell, job, tmp_path, contexts)
    assert "s0=[job]" in result.lines
    assert "s1=[step]" in result.lines and "s1 shell=[step]" in result.lines
    # A step's env values see GITHUB_ENV; the step's other keys see its env values.
    assert "s2=[gh/gh-y/job-only]" in result.lines and "s2 shell=[gh-y]" in result.lines
    assert "step-if" in result.lines


def test_later_writes_win_and_names_are_case_sensitive(shell: list[str], tmp_path: Path) -> None:
    job = make_job(
        step(0, 'echo "X=first" >> "$GITHUB_ENV"; echo "x=lower" >> "$GITHUB_ENV"'),
        step(1, 'echo "X=second" >> "$GITHUB_ENV"; echo "X=third" >> "$GITHUB_ENV"'),
        step(2, _show("v", "${{ env.X }}|${{ env.x }}|${{ env.Unset }}")),
    )
    result = run_job(shell, job, tmp_path, {"env": {"X": "job"}})
    assert "v=[third|lower|]" in result.lines


def test_multiline_values_from_the_delimiter_form(shell: list[str], tmp_path: Path) -> None:
    job = make_job(
        step(
            0, "{ echo 'ML<<EOF'; echo one; echo; echo ' three = 3 '; echo EOF; } >>\"$GITHUB_ENV\""
        ),
        step(1, _show("ml", "${{ env.ML }}")),
        step(2, "echo multi", if_="env.ML == 'ONE\n\n three = 3 '"),
        step(3, 'printf "%s|" "$V"; echo', env={"V": "${{ env.ML }}"}),
    )
    result = run_job(shell, job, tmp_path)
    assert "ml=[one" in result.lines
    start = result.lines.index("ml=[one")
    assert result.lines[start : start + 3] == ["ml=[one", "", " three = 3 ]"]
    assert "multi" in result.lines
    assert "one" in result.lines and " three = 3 |" in result.lines


HOSTILE = "a'b\"c $(touch pwned1) `touch pwned2` ${X:=q} \\ ; touch pwned3 #"


def test_hostile_values_are_never_executed(shell: list[str], tmp_path: Path) -> None:
    write = (
        "{ echo 'H<<EOF'; cat <<'CV_IN'\n"
        + HOSTILE
        + '\nline2 $(touch pwned4)\nCV_IN\necho EOF; } >>"$GITHUB_ENV"'
    )
    job = make_job(
        step(0, write),
        step(1, 'printf "%s|" "$V"; echo', env={"V": "${{ env.H }}-v"}, name="n ${{ env.H }}"),
        step(2, "echo cmp", if_="contains(env.H, 'touch pwned1') && env.H != 'x'"),
        step(3, _show("h", "${{ env.H }}")),
    )
    result = run_job(shell, job, tmp_path)
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith("pwned")]
    value = HOSTILE + "\nline2 $(touch pwned4)"
    assert HOSTILE in result.lines and "line2 $(touch pwned4)-v|" in result.lines
    names = {e.index: e.name for e in result.events if isinstance(e, StepStarted)}
    assert names[1] == "n " + value
    assert "cmp" in result.lines
    assert f"h=[{HOSTILE}" in result.lines
    assert [o for o, _ in result.outcomes()] == ["success"] * 4


def test_process_environment_is_not_the_env_context(shell: list[str], tmp_path: Path) -> None:
    job = make_job(step(0, "true"), step(1, _show("p", "${{ env.ONLY_PROCESS }}")))
    env = {**os.environ, "ONLY_PROCESS": "inherited"}
    result = run_job(shell, job, tmp_path, env=env)
    assert "p=[]" in result.lines


def test_runner_variables_cannot_be_set_through_github_env(
    shell: list[str], tmp_path: Path
) -> None:
    job = make_job(
        step(0, "exit 3"),
        step(1, 'echo "_cv_fail=0" >> "$GITHUB_ENV"', if_="always()"),
        step(2, "echo after"),
    )
    result = run_job(shell, job, tmp_path)
    assert result.finished[1].outcome == "failure"
    assert "reserved for the runner" in result.finished[1].reason
    # The runner still knows step 0 failed.
    assert "after" not in result.lines and result.finished[2].outcome == "skipped"
    assert result.rc == 3


def test_job_outputs_see_github_env(shell: list[str], tmp_path: Path) -> None:
    job = make_job(
        step(0, 'echo "V=from-step" >> "$GITHUB_ENV"'),
        outputs={"v": "${{ env.V }}"},
    )
    result = run_job(shell, job, tmp_path, {"env": {"V": "job"}})
    assert result.outputs == {"v": "from-step"}


def test_first_step_and_whole_env_uses_are_rendered_in_place() -> None:
    first = make_job(step(0, "echo ${{ env.A }}", if_="env.A == 'a'"))
    script = render_job_script(first, Plan("p", (first,)), {"env": {"A": "a"}}, new_nonce())
    assert "_cv_ev_" not in script and "printf '%s' 'echo a'" in script
    later = make_job(
        step(0, "true"), step(1, "echo ${{ toJSON(env) }} ${{ format('{0}', env.A) }}")
    )
    script = render_job_script(later, Plan("p", (later,)), {"env": {"A": "a"}}, new_nonce())
    body = script.split('>"$_cv_tmp/s0.sh"', 1)[1].split('>"$_cv_tmp/s1.sh"', 1)[0]
    body = body[body.index("printf '%s' ") :]
    assert body == "printf '%s' 'echo {\n  \"A\": \"a\"\n} a' "
