"""The runner script's cheap paths: the backend's temporary directory
(``CONVEYOR_TEMP_DIR``), no leftover-process search when the backend kills the job's
processes itself (``CONVEYOR_NO_REAP=1``), and marker fields encoded without processes.
Every test runs under each POSIX shell of the machine."""

from __future__ import annotations

import os
import select
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.test_script import (
    SHELLS,
    _watch_child,
    make_job,
    run_job,
    step,
)
from workflow.markers import JobFinished, MarkerParser, StepStarted, encode_field, new_nonce
from workflow.model import Plan
from workflow.script import render_job_script


@pytest.fixture(params=SHELLS, ids=lambda argv: " ".join(Path(a).name for a in argv))
def shell(request: pytest.FixtureRequest) -> list[str]:
    argv: list[str] = request.param
    return argv


# What the script encodes in the shell (see workflow.runner_template._cv_enc).
PLAIN = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 ._:,=/+@%-"


def _env(**extra: str) -> dict[str, str]:
    """This process's environment without Conveyor's own variables (the tests may run
    inside a Conveyor job), plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONVEYOR_")}
    return {**env, **extra}


def test_backend_temp_dir_is_used_and_kept(shell: list[str], tmp_path: Path) -> None:
    ws, keep, other = tmp_path / "ws", tmp_path / "keep", tmp_path / "other"
    for d in (ws, keep, other):
        d.mkdir()
    job = make_job(
        step(0, 'echo "$RUNNER_TEMP"; echo "$GITHUB_OUTPUT"; touch "$RUNNER_TEMP/mine"'),
        step(1, 'echo "${CONVEYOR_TEMP_DIR-unset} ${CONVEYOR_NO_REAP-unset}"'),
    )
    (keep / "timedout").touch()  # left by an earlier run: not this run's timeout
    env = _env(CONVEYOR_TEMP_DIR=str(keep), CONVEYOR_NO_REAP="1", TMPDIR=str(other))
    result = run_job(shell, job, ws, env=env)
    assert result.rc == 0, result
    assert result.outcomes() == [("success", "success")] * 2
    assert result.lines == [str(keep), f"{keep}/output0", "unset unset"]
    assert {"mine", "s0.sh", "s1.sh", "output1"} <= {p.name for p in keep.iterdir()}
    assert not list(other.iterdir()), "the script made a directory of its own"


@pytest.mark.parametrize("given_dir", ["unset", "missing"])
def test_without_a_backend_temp_dir_the_script_makes_and_removes_one(
    shell: list[str], tmp_path: Path, given_dir: str
) -> None:
    ws, other = tmp_path / "ws", tmp_path / "other"
    ws.mkdir()
    other.mkdir()
    extra = {"TMPDIR": str(other)}
    if given_dir == "missing":
        extra["CONVEYOR_TEMP_DIR"] = str(tmp_path / "missing")
    job = make_job(step(0, 'echo "$RUNNER_TEMP"; ls "$RUNNER_TEMP" | wc -l'))
    result = run_job(shell, job, ws, env=_env(**extra))
    assert result.rc == 0, result
    runner_temp = Path(result.lines[0])
    assert runner_temp.parent.parent == other and runner_temp.name == "temp"
    assert result.lines[1].strip() == "0"
    assert not list(other.iterdir()), "the script left its temporary directory behind"
    assert not (tmp_path / "missing").exists()


# A process that leaves the step's session (the step's session is killed at job end
# either way) and still holds the job's stdout; it reports its pid before the step ends.
ESCAPE = """\
mkfifo up
setsid sh -c 'echo child=$$; echo >up; exec sleep 30' &
read x <up
"""


@pytest.mark.parametrize("no_reap", [False, True], ids=["reap", "no-reap"])
def test_no_reap_leaves_leftover_processes_to_the_backend(
    shell: list[str], tmp_path: Path, no_reap: bool
) -> None:
    nonce = new_nonce()
    job = make_job(step(0, ESCAPE))
    script = render_job_script(job, Plan("p", (job,)), {}, nonce)
    env = _env(CONVEYOR_NO_REAP="1") if no_reap else _env()
    parser = MarkerParser(nonce)
    pidfds: list[int] = []
    with subprocess.Popen(
        [*shell, "-c", script], cwd=tmp_path, stdout=subprocess.PIPE, env=env
    ) as proc:
        assert proc.stdout is not None
        try:
            for raw in proc.stdout:
                text, event = parser.feed(raw.decode().removesuffix("\n"))
                if text is not None:
                    _watch_child(text, pidfds)
                if isinstance(event, JobFinished):
                    break
            assert proc.wait(timeout=30) == 0
            assert len(pidfds) == 1
            # The script has exited: without the search, the leftover is still there.
            alive = not select.select([pidfds[0]], [], [], 0)[0]
            assert alive == no_reap
        finally:
            for fd in pidfds:
                signal.pidfd_send_signal(fd, signal.SIGKILL)
                os.close(fd)
            proc.stdout.read()


ENCODED = [
    "",
    "a",
    "ab",
    "abc",
    "abcd",
    "exit code 2",
    "continue-on-error: timed out after 0.5m",
    PLAIN,
    "x" * 240,  # the longest text encoded in the shell
    "y" * 241,
    "é",
    "a\nb",
    " '\"$(x)`\\",
    "::conveyor:",
]


def _outputs_job(values: list[str]) -> tuple[str, str]:
    """(script, nonce) of a job whose outputs are ``values``, set at run time by a step."""
    nonce = new_nonce()
    writes = "".join(
        f"printf 'v{i}<<EOF\\n%s\\nEOF\\n' {_sq(v)} >>\"$GITHUB_OUTPUT\"\n"
        for i, v in enumerate(values)
    )
    outputs = {f"v{i}": f"${{{{ steps.w.outputs.v{i} }}}}" for i in range(len(values))}
    job = make_job(step(0, writes, id="w"), outputs=outputs)
    return render_job_script(job, Plan("p", (job,)), {}, nonce), nonce


def _sq(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


def _encoded_outputs(
    argv: list[str], cwd: Path, values: list[str], env: dict[str, str]
) -> list[str]:
    """The encoded fields of the job's output markers, in order."""
    script, nonce = _outputs_job(values)
    done = subprocess.run([*argv, "-c", script], cwd=cwd, env=env, capture_output=True, check=False)
    assert done.returncode == 0, done
    parser = MarkerParser(nonce)
    fields = []
    for line in done.stdout.decode().splitlines():
        _, event = parser.feed(line)
        if event is not None and "::output::" in line:
            fields.append(line.rsplit("::", 1)[1])
    return fields


def test_fields_are_standard_base64_whichever_way_they_are_encoded(
    shell: list[str], tmp_path: Path
) -> None:
    fields = _encoded_outputs(shell, tmp_path, ENCODED, _env())
    assert fields == [encode_field(v) for v in ENCODED]


@settings(max_examples=10, deadline=None)
@given(values=st.lists(st.text(PLAIN, min_size=1, max_size=60), min_size=1, max_size=8))
def test_plain_text_encodes_like_python(
    values: list[str], tmp_path_factory: pytest.TempPathFactory
) -> None:
    cwd = tmp_path_factory.mktemp("ws")
    for shell_argv in SHELLS:
        fields = _encoded_outputs(shell_argv, cwd, values, _env())
        assert fields == [encode_field(v) for v in values]


def _only_tools(root: Path, *names: str) -> str:
    """A PATH directory holding only ``names`` (links to the real tools)."""
    bin_dir = root / "bin"
    bin_dir.mkdir()
    for name in names:
        real = shutil.which(name)
        assert real is not None, name
        (bin_dir / name).symlink_to(real)
    return str(bin_dir)


def test_a_trivial_job_runs_no_tool_but_the_step_shell(shell: list[str], tmp_path: Path) -> None:
    """With both variables set, a job whose steps succeed, fail and set outputs works
    with nothing on PATH but setsid and bash: the script itself starts no other
    process (the common path costs no mktemp, base64, awk, ...)."""
    ws, keep = tmp_path / "ws", tmp_path / "keep"
    ws.mkdir()
    keep.mkdir()
    path = _only_tools(tmp_path, "setsid", "bash")
    job = make_job(
        step(0, 'echo "v=1.2.3" >>"$GITHUB_OUTPUT"', id="a"),
        step(1, "exit 3", continue_on_error=True),
        step(2, "true", name="${{ steps.a.outputs.v }}"),
        outputs={"v": "${{ steps.a.outputs.v }}"},
    )
    env = {"PATH": path, "CONVEYOR_TEMP_DIR": str(keep), "CONVEYOR_NO_REAP": "1"}
    result = run_job(shell, job, ws, env=env)
    assert result.lines == []
    assert StepStarted(2, "1.2.3") in result.events
    assert result.outcomes() == [
        ("success", "success"),
        ("failure", "success"),
        ("success", "success"),
    ]
    assert result.finished[1].reason == "continue-on-error: exit code 3"
    assert result.outputs == {"v": "1.2.3"}
    assert result.rc == 0


PID_NAMESPACE = ["unshare", "--pid", "--fork", "--kill-child=SIGKILL", "--mount-proc"]


def test_no_reap_under_a_pid_namespace_still_ends_at_the_script_exit(tmp_path: Path) -> None:
    """The local backend's case: the script is init of the job's pid namespace, so the
    leftover dies with it and the output ends without the search."""
    if subprocess.run([*PID_NAMESPACE, "true"], capture_output=True).returncode != 0:
        pytest.skip("no pid namespaces here (unshare needs CAP_SYS_ADMIN)")
    job = make_job(step(0, ESCAPE.replace("sleep 30", "sleep 600")), step(1, "echo next"))
    seen: dict[str, float] = {}

    def on_line(line: str, _: object) -> None:
        if line.startswith("child="):
            seen["child"] = time.monotonic()
        if "::job-end::" in line:
            seen["job-end"] = time.monotonic()

    result = run_job(
        [*PID_NAMESPACE, "/bin/sh"], job, tmp_path, env=_env(CONVEYOR_NO_REAP="1"), on_line=on_line
    )
    assert "child" in seen, "the step did not report its leftover"
    # End of file came with the script's exit, not with the leftover's 600 s sleep.
    assert time.monotonic() - seen["job-end"] < 60
    assert result.rc == 0
    assert [ln for ln in result.lines if not ln.startswith("child=")] == ["next"]
