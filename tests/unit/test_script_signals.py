"""Signals that reach a subshell of the runner script before the subshell has run at all.

Until a fresh subshell resets its traps it still runs the script's TERM handler, and
dash and busybox then forget the TERM it caught. The step's timeout watchdog and the
step itself are such subshells, signalled by the script right after they are started
when a step ends at once (the watchdog) or the job is cancelled as a step starts (the
step). These tests force that interleaving: the script runs on one CPU at a real-time priority
its children do not inherit, so a child it forks does not run before the script blocks,
and the child is stopped (SIGSTOP) before the TERM and continued after it: the TERM is
pending when the child first runs."""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.unit.test_script import SHELLS, make_job, run_job, step
from workflow.markers import new_nonce
from workflow.runner_template import PRELUDE


@pytest.fixture(params=SHELLS, ids=lambda argv: " ".join(Path(a).name for a in argv))
def shell(request: pytest.FixtureRequest) -> list[str]:
    argv: list[str] = request.param
    return argv


def run_prelude(
    shell: list[str], body: str, tmp_path: Path, *, force: bool = True
) -> tuple[bool, int, list[str]]:
    """Runs the runner's prelude then ``body``: (whether the run was forced, exit code,
    lines). ``force``: on one CPU, at a real-time priority its children do not inherit
    where this process may set one; with it, a child runs only once the script blocks
    (``wait``)."""
    temp = tmp_path / "temp"
    temp.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONVEYOR_")}
    env["CONVEYOR_TEMP_DIR"] = str(temp)
    # The script waits for its CPU and priority before it forks anything.
    script = "read _go\n" + PRELUDE.replace("@NONCE@", new_nonce()) + body
    with subprocess.Popen(
        [*shell, "-c", script],
        cwd=tmp_path,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    ) as proc:
        forced = False
        if force:
            os.sched_setaffinity(proc.pid, {min(os.sched_getaffinity(0))})
            policy = os.SCHED_FIFO | os.SCHED_RESET_ON_FORK
            with contextlib.suppress(PermissionError):
                os.sched_setscheduler(proc.pid, policy, os.sched_param(1))
                forced = True
        out, _ = proc.communicate(b"go\n")
    return forced, proc.returncode, out.decode().splitlines()


def test_a_watchdog_told_to_stop_before_it_ran_stops(shell: list[str], tmp_path: Path) -> None:
    """The step already ended when the script starts waiting for it, so it stops the
    watchdog at once: the watchdog must not time out the finished step later (a step
    `echo hi` failed "timed out after 0.05m", 8 s late, one job in ten)."""
    body = """
true & _cv_s=$!
wait "$_cv_s"  # the step: ended and reaped, as _cv_run has it when it stops the watchdog
_cv_watch "$_cv_s" 0.01 1 >/dev/null 2>&1 & _cv_wpid=$!
kill -STOP "$_cv_wpid"; kill "$_cv_wpid"; kill -CONT "$_cv_wpid"
wait "$_cv_wpid"
if [ -e "$_cv_tmp/timedout" ]; then echo "timed out"; else echo stopped; fi
"""
    # Without a real-time priority the watchdog may run before it is stopped: the test
    # is then weaker, never wrong.
    _, rc, lines = run_prelude(shell, body, tmp_path)
    assert (rc, lines) == (0, ["stopped"])


def test_a_step_cancelled_before_it_ran_does_not_run(shell: list[str], tmp_path: Path) -> None:
    """The job is cancelled (the script's TERM trap signals the step) just as the step
    starts: the step must not run to its end."""
    body = """
_cv_step_t() { echo survived; }
_cv_start _cv_step_t
kill -STOP "$_cv_pid"
kill -TERM $$
kill -CONT "$_cv_pid"
wait "$_cv_pid"; echo "status $? cancelled $_cv_canc"
"""
    forced, rc, lines = run_prelude(shell, body, tmp_path)
    if not forced:
        # The step may then run before it is stopped, and rightly print "survived".
        pytest.skip(
            "!!! SKIPPED: forcing the interleaving needs a real-time priority (CAP_SYS_NICE)"
        )
    assert (rc, lines) == (0, ["status 143 cancelled 1"])


def test_a_step_ending_as_the_job_is_cancelled_has_its_own_status(
    shell: list[str], tmp_path: Path
) -> None:
    """The TERM interrupts the script's `wait` for a step that is ending. bash may then
    have reaped the step without keeping its status: waiting again returned -1, after
    blocking until another child (the step's timeout watchdog) ended, so a step that
    had finished "timed out". A race inside bash: the loop makes it show."""
    body = """
_cv_step_t() { kill -TERM $$; exit 0; }
i=0
while [ $i -lt 30 ]; do
  _cv_canc=0; _cv_c0=0
  _cv_run _cv_step_t '' ''
  case $_cv_st in 0|143) ;; *) echo "status $_cv_st in round $i"; break ;; esac
  i=$((i + 1))
done
echo "cancelled $_cv_canc"
"""
    assert run_prelude(shell, body, tmp_path, force=False)[1:] == (0, ["cancelled 1"])


def test_a_step_whose_if_is_evaluated_as_the_job_is_cancelled_is_cancelled(
    shell: list[str], tmp_path: Path
) -> None:
    """The TERM comes while the script decides whether a step runs (here during its
    `if:`, which runs awk): the step was to run in a job not yet cancelled, so it is
    cancelled, not run to its end as if it had started after the cancellation."""
    awk = shutil.which("awk")
    assert awk is not None
    bin_dir, once = tmp_path / "bin", tmp_path / "once"
    bin_dir.mkdir()
    fake = bin_dir / "awk"
    # The first awk, step 1's `if:`, is where the job is cancelled (the script is its parent).
    fake.write_text(
        f"#!/bin/sh\nif mkdir {shlex.quote(str(once))} 2>/dev/null; then kill -TERM $PPID; fi\n"
        f'exec {shlex.quote(awk)} "$@"\n'
    )
    fake.chmod(0o755)
    job = make_job(
        step(0, 'echo v=y >>"$GITHUB_OUTPUT"', id="x"),
        step(1, "echo ran", if_="steps.x.outputs.v == 'y'"),
        step(2, "echo always", if_="always()"),
    )
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    result = run_job(shell, job, tmp_path, env=env)
    assert once.exists()
    assert result.lines == ["always"]
    f = result.finished
    assert (f[1].outcome, f[1].conclusion, f[1].reason) == ("cancelled", "cancelled", "cancelled")
    assert result.rc == 143
