"""Runner scripts run for real under every POSIX shell on the machine (dash as /bin/sh,
bash in POSIX mode, busybox sh when installed); their output goes through the parser."""

from __future__ import annotations

import os
import select
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workflow.markers import (
    Event,
    JobFinished,
    JobOutput,
    MarkerParser,
    StepFinished,
    StepStarted,
    new_nonce,
)
from workflow.model import JobSpec, Plan, StepSpec
from workflow.script import render_job_script


def _shells() -> list[list[str]]:
    found: dict[str, list[str]] = {}
    for argv in (["/bin/sh"], ["dash"], ["bash", "--posix"], ["busybox", "sh"]):
        path = shutil.which(argv[0])
        if path is None:
            continue
        if argv[0] == "busybox" and subprocess.run([path, "sh", "-c", ":"]).returncode != 0:
            continue
        found.setdefault(os.path.realpath(path), [path, *argv[1:]])
    return list(found.values())


SHELLS = _shells()


@pytest.fixture(params=SHELLS, ids=lambda argv: " ".join(Path(a).name for a in argv))
def shell(request: pytest.FixtureRequest) -> list[str]:
    argv: list[str] = request.param
    return argv


@dataclass
class Result:
    rc: int
    events: list[Event] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)

    @property
    def finished(self) -> dict[int, StepFinished]:
        return {e.index: e for e in self.events if isinstance(e, StepFinished)}

    @property
    def outputs(self) -> dict[str, str]:
        return {e.name: e.value for e in self.events if isinstance(e, JobOutput)}

    def outcomes(self) -> list[tuple[str, str]]:
        return [(f.outcome, f.conclusion) for _, f in sorted(self.finished.items())]


def step(index: int, run: str | None = None, **kw: Any) -> StepSpec:
    kw.setdefault("name", f"step {index}")
    return StepSpec(index=index, run=run, **kw)


def make_job(*steps: StepSpec, **kw: Any) -> JobSpec:
    return JobSpec(key="j", job_id="j", name="j", steps=steps, **kw)


def run_job(
    shell: list[str],
    job: JobSpec,
    workspace: Path,
    contexts: Mapping[str, Any] | None = None,
    *,
    plan: Plan | None = None,
    on_line: Callable[[str, subprocess.Popen[bytes]], None] | None = None,
    env: Mapping[str, str] | None = None,
) -> Result:
    nonce = new_nonce()
    script = render_job_script(job, plan or Plan("p", (job,)), contexts or {}, nonce)
    parser = MarkerParser(nonce)
    result = Result(rc=-1)
    # Binary, split on b"\n" only, as the engine reads a log stream.
    with subprocess.Popen(
        [*shell, "-c", script], cwd=workspace, stdout=subprocess.PIPE, env=env
    ) as proc:
        assert proc.stdout is not None
        for raw in proc.stdout:
            line = raw.removesuffix(b"\n").decode("utf-8", errors="replace")
            text, event = parser.feed(line)
            if text is not None:
                result.lines.append(text)
                if on_line is not None:
                    on_line(text, proc)
            if event is not None:
                result.events.append(event)
                if on_line is not None:
                    on_line(line[len(text or "") :], proc)
        result.rc = proc.wait(timeout=60)
    assert isinstance(result.events[-1], JobFinished), result
    assert result.events[-1].exit_code == result.rc
    return result


def test_steps_run_in_order_and_each_is_reported(shell: list[str], tmp_path: Path) -> None:
    job = make_job(*(step(i, f"echo out{i}", name=f"n{i}") for i in range(3)))
    result = run_job(shell, job, tmp_path)
    assert result.rc == 0
    assert result.lines == ["out0", "out1", "out2"]
    expected: list[Event] = []
    for i in range(3):
        expected += [StepStarted(i, f"n{i}"), StepFinished(i, "success", "success", 0, "")]
    assert result.events == [*expected, JobFinished(0)]


def test_env_precedence_job_then_github_env_then_step(shell: list[str], tmp_path: Path) -> None:
    job = make_job(
        step(
            0,
            'echo "0:$A:$B:$C"; echo C=file >>"$GITHUB_ENV"; echo B=file >>"$GITHUB_ENV"',
            env={"B": "step0"},
        ),
        step(1, 'echo "1:$A:$B:$C"', env={"B": "step1-${{ env.A }}"}),
        step(2, 'echo "2:$A:$B:$C"'),
    )
    contexts = {"env": {"A": "wf", "B": "wf", "C": "wf"}}
    result = run_job(shell, job, tmp_path, contexts)
    assert result.lines == ["0:wf:step0:wf", "1:wf:step1-wf:file", "2:wf:file:file"]


def test_env_and_output_files_accept_the_multiline_form(shell: list[str], tmp_path: Path) -> None:
    write = (
        "{ echo 'ML<<EOF'; echo one; echo; echo 'three = 3'; echo EOF; } >>\"$GITHUB_ENV\"\n"
        "{ echo 'text<<XYZ'; echo 'a=b'; echo 'c<<d'; echo XYZ; } >>\"$GITHUB_OUTPUT\"\n"
        "echo 'eq=x=y' >>\"$GITHUB_OUTPUT\"\n"
        "printf 'last=no newline' >>\"$GITHUB_OUTPUT\"\n"
    )
    job = make_job(
        step(0, write, id="w"),
        step(1, "printf '%s' \"$ML\" | tr '\\n' '|'; echo"),
        step(2, "echo '${{ steps.w.outputs.eq }}'"),
        outputs={"text": "${{ steps.w.outputs.text }}", "last": "${{ steps.w.outputs.last }}"},
    )
    result = run_job(shell, job, tmp_path)
    assert result.rc == 0, result
    assert result.lines == ["one||three = 3", "x=y"]
    assert result.outputs == {"text": "a=b\nc<<d", "last": "no newline"}


def test_malformed_output_file_fails_the_step(shell: list[str], tmp_path: Path) -> None:
    job = make_job(step(0, "echo 'x<<EOF' >>\"$GITHUB_OUTPUT\"; echo 'only' >>\"$GITHUB_OUTPUT\""))
    result = run_job(shell, job, tmp_path)
    assert result.rc == 1
    assert result.finished[0].reason == "GITHUB_OUTPUT: matching delimiter 'EOF' not found"


def test_github_path_prepends_for_later_steps(shell: list[str], tmp_path: Path) -> None:
    make_tool = (
        "mkdir -p tools && printf '#!/bin/sh\\necho tool ran\\n' >tools/mytool && "
        'chmod +x tools/mytool && echo "$PWD/tools" >>"$GITHUB_PATH"'
    )
    job = make_job(step(0, make_tool), step(1, "mytool"))
    result = run_job(shell, job, tmp_path)
    assert result.rc == 0
    assert result.lines == ["tool ran"]


def test_outputs_reach_later_steps_and_job_outputs(shell: list[str], tmp_path: Path) -> None:
    job = make_job(
        step(0, 'echo "Version=1.2" >>"$GITHUB_OUTPUT"', id="Build"),
        step(
            1,
            "echo 'got ${{ steps.build.outputs.version }}'",
            name="use ${{ steps.BUILD.outputs.VERSION }}",
        ),
        step(2, "echo 'default ${{ steps.build.outputs.nope || 'none' }}'"),
        outputs={
            "version": "v${{ steps.build.outputs.version }}",
            "missing": "${{ steps.build.outputs.nope }}",
            "static": "${{ matrix.os }}-${{ needs.prep.outputs.x }}",
        },
    )
    contexts = {
        "matrix": {"os": "linux"},
        "needs": {"prep": {"result": "success", "outputs": {"x": "7"}}},
    }
    result = run_job(shell, job, tmp_path, contexts)
    assert result.lines == ["got 1.2", "default none"]
    assert StepStarted(1, "use 1.2") in result.events
    assert result.outputs == {"version": "v1.2", "missing": "", "static": "linux-7"}


def test_if_conditions_follow_outcomes(shell: list[str], tmp_path: Path) -> None:
    job = make_job(
        step(0, "exit 3", id="a", continue_on_error=True),
        step(1, "echo ran1", if_="steps.a.outcome == 'failure'"),
        step(2, "echo ran2", if_="${{ steps.a.conclusion == 'failure' }}"),
        step(3, "exit 4", id="b"),
        step(4, "echo ran4"),
        step(5, "echo ran5", if_="failure() && steps.b.outcome == 'failure'"),
        step(6, "echo ran6; exit 9", if_="always()"),
        step(7, "echo ran7", if_="steps.a.outcome == 'failure'"),
        step(8, "echo ran8", if_="success()"),
        outputs={"status": "${{ job.status }}"},
    )
    result = run_job(shell, job, tmp_path)
    assert result.lines == ["ran1", "ran5", "ran6"]
    f = result.finished
    assert (f[0].outcome, f[0].conclusion, f[0].reason) == (
        "failure",
        "success",
        "continue-on-error: exit code 3",
    )
    assert f[2].reason == "if: steps.a.conclusion == 'failure' was false"
    assert (f[3].outcome, f[3].exit_code, f[3].reason) == ("failure", 4, "exit code 4")
    assert (f[4].outcome, f[4].exit_code) == ("skipped", None)
    assert f[4].reason == f[7].reason == "skipped: an earlier step failed"
    assert f[8].reason == "if: success() was false"
    assert result.rc == 4  # the first failing step's exit code
    assert result.outputs == {"status": "failure"}


def test_continue_on_error_expression_and_job_success(shell: list[str], tmp_path: Path) -> None:
    job = make_job(
        step(0, "exit 1", continue_on_error="${{ matrix.experimental }}"),
        step(1, "echo after"),
    )
    result = run_job(shell, job, tmp_path, {"matrix": {"experimental": True}})
    assert result.rc == 0
    assert result.lines == ["after"]
    assert result.outcomes() == [("failure", "success"), ("success", "success")]


def _watch_child(line: str, pidfds: list[int]) -> None:
    if line.startswith("child="):
        pidfds.append(os.pidfd_open(int(line.removeprefix("child="))))


def _assert_exited(pidfds: list[int]) -> None:
    assert pidfds, "the step did not report its child"
    for fd in pidfds:
        try:
            readable, _, _ = select.select([fd], [], [], 10)
            assert readable, "the step's child survived"
        finally:
            os.close(fd)


def test_step_timeout_kills_the_step_and_its_children(shell: list[str], tmp_path: Path) -> None:
    job = make_job(
        step(0, "sleep 30 & echo child=$!; sleep 30", timeout_minutes=0.02),
        step(1, "echo cleanup", if_="always()"),
    )
    pidfds: list[int] = []
    result = run_job(shell, job, tmp_path, on_line=lambda line, _: _watch_child(line, pidfds))
    _assert_exited(pidfds)
    first = result.finished[0]
    assert (first.outcome, first.reason) == ("failure", "timed out after 0.02m")
    assert result.rc == first.exit_code != 0
    assert "cleanup" in result.lines


def test_sigterm_cancels_the_running_step_and_skips_the_rest(
    shell: list[str], tmp_path: Path
) -> None:
    job = make_job(
        step(0, "echo first"),
        step(1, "sleep 30 & echo child=$!; echo ready; wait"),
        step(2, "echo never"),
        step(3, "echo always", if_="always()"),
        step(4, "echo cancelled", if_="cancelled() && steps.x.outcome == 'success'"),
        step(5, "echo failure", if_="failure()"),
        step(6, "echo status ${{ job.status }}", if_="!success()"),
        step(7, "echo x", id="x"),
    )
    pidfds: list[int] = []

    def on_line(line: str, proc: subprocess.Popen[bytes]) -> None:
        _watch_child(line, pidfds)
        if line == "ready":
            proc.send_signal(signal.SIGTERM)

    result = run_job(shell, job, tmp_path, on_line=on_line)
    _assert_exited(pidfds)
    assert result.rc == 143
    f = result.finished
    assert (f[1].outcome, f[1].conclusion, f[1].reason) == ("cancelled", "cancelled", "cancelled")
    assert f[2].reason == f[7].reason == "skipped: the job was cancelled"
    assert [f[i].outcome for i in (3, 4, 5, 6)] == ["success", "skipped", "skipped", "success"]
    assert [
        ln for ln in result.lines if ln in ("first", "always", "never") or ln.startswith("status")
    ] == ["first", "always", "status cancelled"]


# Leaves three processes holding the job's stdout, each reporting its pid once it is set
# up (the step waits for that on a FIFO each): one in the step's session, one in a session of
# its own when the image has setsid, and one that ignores SIGTERM (only KILL stops it).
LEFTOVERS = """\
mkfifo up1 up2 up3
command -v setsid >/dev/null && escape=setsid || escape=
sh -c 'echo child=$$; echo >up1; exec sleep 30' &
read x <up1
$escape sh -c 'echo child=$$; echo >up2; exec sleep 30' &
read x <up2
sh -c 'trap "" TERM; echo child=$$; echo >up3; exec sleep 30' &
read x <up3
printf 'left three behind'
"""


def _leftovers_test(shell: list[str], workspace: Path) -> None:
    """The job ends (end of file on its stdout) without waiting for the processes a
    step left behind: they are all gone before the job-end marker."""
    job = make_job(step(0, LEFTOVERS), step(1, "echo next"))
    pidfds: list[int] = []
    alive_at_job_end: list[int] = []

    def on_line(line: str, _: subprocess.Popen[bytes]) -> None:
        _watch_child(line, pidfds)
        if "::job-end::" in line:
            alive_at_job_end.extend(fd for fd in pidfds if not select.select([fd], [], [], 0)[0])

    result = run_job(shell, job, workspace, on_line=on_line)
    assert len(pidfds) == 3, result
    assert not alive_at_job_end, "a leftover process outlived the job"
    _assert_exited(pidfds)
    assert result.rc == 0
    assert [ln for ln in result.lines if not ln.startswith("child=")] == [
        "left three behind",
        "next",
    ]


def test_leftover_processes_are_stopped_at_job_end(shell: list[str], tmp_path: Path) -> None:
    _leftovers_test(shell, tmp_path)


def test_a_marker_after_output_without_newline_is_still_a_marker(
    shell: list[str], tmp_path: Path
) -> None:
    """A step killed mid-line (timeout) and a job cancelled mid-line: the markers that
    follow the unterminated output are found, the output stays output, and the shell's
    own report of the killed step is not glued to it."""
    job = make_job(
        step(0, "printf 'half a line'; exec sleep 30", timeout_minutes=0.01),
        step(1, "printf 'not ended'; kill -TERM $PPID; exec sleep 30", if_="always()"),
    )
    result = run_job(shell, job, tmp_path)
    assert result.lines == ["half a line", "not ended"]
    assert result.finished[0].reason == "timed out after 0.01m"
    assert result.finished[1].reason == "cancelled"
    assert result.rc == 143


CMDLINE = "tr '\\0' ' ' </proc/$$/cmdline | cut -d' ' -f1-5"


def test_shells(shell: list[str], tmp_path: Path) -> None:
    python = shutil.which("python3")
    assert python is not None
    job = make_job(
        step(0, f"{CMDLINE}\nfalse | true\necho default shell ignores pipe failures"),
        step(1, f"{CMDLINE}\nfalse | true\necho unreachable", shell="bash", continue_on_error=True),
        step(2, CMDLINE, shell="sh"),
        step(3, "import sys\nprint('python', sys.version_info[0])", shell="python"),
        step(4, "import sys\nprint(sys.argv[1:])", shell=f"{python} -u {{0}} 'an arg'"),
        step(5, 'print "perl\\n";', shell="perl"),
    )
    result = run_job(shell, job, tmp_path)
    lines = [ln.split("/")[0].strip() if "/" in ln else ln for ln in result.lines]
    assert lines == [
        "bash -e",
        "default shell ignores pipe failures",
        "bash --noprofile --norc -eo pipefail",
        "sh -e",
        "python 3",
        "['an arg']",
        "perl",
    ]
    assert result.outcomes()[1] == ("failure", "success")


def test_default_shell_comes_from_job_then_workflow(shell: list[str], tmp_path: Path) -> None:
    job = make_job(step(0, CMDLINE), defaults_shell="sh")
    assert run_job(shell, job, tmp_path).lines[0].startswith("sh -e ")
    job = make_job(step(0, "print('from the workflow default')"))
    plan = Plan("p", (job,), defaults_shell="python")
    assert run_job(shell, job, tmp_path, plan=plan).lines == ["from the workflow default"]


def test_hostile_values_stay_literal(shell: list[str], tmp_path: Path) -> None:
    hostile = "$(touch pwned) `touch pwned2` ${HOME} 'single' \"double\" \\ ; | & \n second line"
    d = "dir $(touch pwned3) 'q'"
    job = make_job(
        step(
            0,
            "printf '%s' \"$H\" >env.txt\ncat <<'EOF' >run.txt\n${{ matrix.h }}\nEOF\n",
            name="n ${{ matrix.h }}",
            env={"H": "${{ matrix.h }}"},
        ),
        step(
            1,
            'mkdir -p "$D" && echo "v=$D" >>"$GITHUB_OUTPUT"',
            id="s",
            env={"D": "${{ matrix.d }}"},
        ),
        step(2, 'pwd >"$GITHUB_WORKSPACE/pwd.txt"', working_directory="${{ steps.s.outputs.v }}"),
        outputs={"h": "${{ matrix.h }}", "mixed": "${{ steps.s.outputs.v }}${{ matrix.h }}"},
    )
    result = run_job(shell, job, tmp_path, {"matrix": {"h": hostile, "d": d}})
    assert result.rc == 0, result
    assert not list(tmp_path.rglob("pwned*"))
    assert (tmp_path / "env.txt").read_text() == hostile
    # run: the value is pasted into the step's script text, as GitHub does
    assert (tmp_path / "run.txt").read_text() == hostile + "\n"
    assert StepStarted(0, "n " + hostile) in result.events
    assert (tmp_path / "pwd.txt").read_text() == str(tmp_path / d) + "\n"
    assert result.outputs == {"h": hostile, "mixed": d + hostile}


def test_forged_markers_and_partial_lines_are_ordinary_output(
    shell: list[str], tmp_path: Path
) -> None:
    other = new_nonce()
    forged = [
        f"::conveyor:{other}::job-end::0",
        f"::conveyor:{other}::step-end::0::success::success::0::",
        "::conveyor:::job-end::0",
        f"  ::conveyor:{other}::output::eA==::eQ==",
    ]
    script = "".join(f"echo '{line}'\n" for line in forged) + "printf 'no newline at the end'"
    job = make_job(step(0, script), step(1, "printf 'partial'; exit 1"))
    result = run_job(shell, job, tmp_path)
    assert result.lines == [*forged, "no newline at the end", "partial"]
    assert [type(e).__name__ for e in result.events] == [
        "StepStarted",
        "StepFinished",
        "StepStarted",
        "StepFinished",
        "JobFinished",
    ]
    assert result.rc == 1


def test_working_directory_and_workspace(shell: list[str], tmp_path: Path) -> None:
    (tmp_path / "sub" / "deeper").mkdir(parents=True)
    job = make_job(
        step(0, 'echo "$PWD"; echo "$GITHUB_WORKSPACE"'),
        step(1, 'echo "$PWD"', working_directory="sub/deeper"),
        step(2, 'echo "$PWD"', working_directory=str(tmp_path)),
        step(3, "echo never", working_directory="missing"),
        defaults_working_directory="sub",
    )
    result = run_job(shell, job, tmp_path)
    ws = str(tmp_path)
    assert result.lines[:4] == [f"{ws}/sub", ws, f"{ws}/sub/deeper", ws]
    assert result.finished[3].outcome == "failure"
    assert "cannot enter the working-directory missing" in result.lines[-1]


def test_github_variables(shell: list[str], tmp_path: Path) -> None:
    github = {
        "sha": "abc123",
        "ref": "refs/heads/main",
        "repository": "o/r",
        "run_id": 12,
        "event": {"x": 1},
        "workspace": "/ignored",
    }
    job = make_job(
        step(
            0,
            'echo "$GITHUB_ACTIONS $CI $GITHUB_SHA $GITHUB_REF $GITHUB_REPOSITORY $GITHUB_RUN_ID '
            '$RUNNER_OS"; touch "$RUNNER_TEMP/t" && echo temp ok; echo "${GITHUB_EVENT-unset}"',
        ),
    )
    result = run_job(shell, job, tmp_path, {"github": github, "runner": {"os": "Linux"}})
    assert result.lines == ["true true abc123 refs/heads/main o/r 12 Linux", "temp ok", "unset"]


def test_checkout_clones_the_repository_at_the_sha(shell: list[str], tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    (repo / "file.txt").write_text("first\n")
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "one"], check=True)
    sha = subprocess.run(
        [*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True
    ).stdout.strip()
    (repo / "file.txt").write_text("second\n")
    subprocess.run([*git, "commit", "-qam", "two"], check=True)
    ws = tmp_path / "ws"
    ws.mkdir()
    job = make_job(StepSpec(0, "checkout", uses="actions/checkout@v4"), step(1, "cat file.txt"))
    result = run_job(shell, job, ws, {"github": {"repository_url": str(repo), "sha": sha}})
    assert result.rc == 0, result
    assert result.lines[-1] == "first"
    none = run_job(shell, job, ws, {"github": {}})
    assert "no repository configured: skipping checkout" in none.lines


_LINES = st.lists(
    st.one_of(
        st.text(st.characters(codec="utf-8", exclude_characters="\n\0")),
        st.builds(lambda n, rest: f"::conveyor:{n}::{rest}", st.just(new_nonce()), st.text()),
    ).filter(lambda line: "\0" not in line),
    max_size=20,
)


@settings(max_examples=15, deadline=None)
@given(lines=_LINES, final_newline=st.booleans())
def test_step_output_passes_through_unchanged(lines: list[str], final_newline: bool) -> None:
    text = "\n".join(lines) + ("\n" if final_newline and lines else "")
    job = make_job(step(0, "cat in.txt", name="cat"), step(1, "cat in.txt", if_="always()"))
    expected = text.split("\n")
    if expected[-1] == "":
        expected.pop()
    for shell in SHELLS:
        with tempfile.TemporaryDirectory() as ws:
            Path(ws, "in.txt").write_text(text, encoding="utf-8")
            result = run_job(shell, job, Path(ws))
        assert result.rc == 0
        assert result.lines == expected * 2
        assert [type(e) for e in result.events] == [StepStarted, StepFinished] * 2 + [JobFinished]


def _busybox_image(root: Path, without: tuple[str, ...] = ()) -> list[str]:
    """A shell whose PATH holds only busybox applets, like an Alpine image."""
    busybox = shutil.which("busybox")
    if busybox is None:
        pytest.skip("busybox is not installed: the Alpine-like runs need it")
    listed = subprocess.run([busybox, "--list"], capture_output=True, text=True, check=True)
    bin_dir = root / "bin"
    bin_dir.mkdir()
    for applet in listed.stdout.split():
        if applet not in without:
            (bin_dir / applet).symlink_to(busybox)
    return ["/usr/bin/env", f"PATH={bin_dir}", str(bin_dir / "sh")]


@pytest.mark.parametrize("without", [(), ("base64", "setsid")], ids=["busybox", "minimal"])
def test_busybox_only_image(tmp_path: Path, without: tuple[str, ...]) -> None:
    shell = _busybox_image(tmp_path, without)
    ws = tmp_path / "ws"
    ws.mkdir()
    job = make_job(
        step(
            0,
            'echo "shell $0" | sed "s|/.*/||"; echo "v=é ${X}" >>"$GITHUB_OUTPUT"',
            id="a",
            env={"X": "${{ matrix.x }}"},
        ),
        step(1, "sleep 30 & echo child=$!; sleep 30", timeout_minutes=0.01),
        step(2, "echo '${{ steps.a.outputs.v }}'", if_="always() && steps.a.outputs.v != ''"),
        outputs={"v": "${{ steps.a.outputs.v }}"},
    )
    pidfds: list[int] = []
    result = run_job(
        shell,
        job,
        ws,
        {"matrix": {"x": "$(x)"}},
        on_line=lambda line, _: _watch_child(line, pidfds),
    )
    _assert_exited(pidfds)
    assert result.lines[0] == "shell s0.sh"
    assert result.lines[-1] == "é $(x)"
    assert result.finished[1].reason == "timed out after 0.01m"
    assert result.outputs == {"v": "é $(x)"}


@pytest.mark.parametrize("without", [(), ("setsid",)], ids=["busybox", "no-setsid"])
def test_busybox_only_image_stops_leftover_processes(
    tmp_path: Path, without: tuple[str, ...]
) -> None:
    shell = _busybox_image(tmp_path, without)
    ws = tmp_path / "ws"
    ws.mkdir()
    _leftovers_test(shell, ws)
