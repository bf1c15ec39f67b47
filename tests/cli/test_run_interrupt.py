"""Ctrl-C in `conveyor run`, at every moment: never a traceback; 130 before the build
exists, the cancelled build's code (1) once it does, 130 on a second Ctrl-C.

Each moment is found by an event, not by a delay: the process mapping grpc's C
extension (start-up imports), its threads appearing (the private server starting),
lines of output (a job running, the cancel notice, the final result).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.cli.terminal import Terminal

# A job that ignores SIGTERM (so cancelling it takes the backend's grace period); its
# shell carries a marker on its command line, to find it in /proc afterwards.
LONG_JOB = (
    "jobs:\n"
    "  build:\n"
    "    container: node:20\n"
    "    steps:\n"
    "      - run: |\n"
    "          echo started\n"
    "          exec sh -c 'trap \"\" TERM; while :; do sleep 0.05; done' {marker}\n"
)


def long_workflow(tmp_path: Path) -> Path:
    path = tmp_path / "long.yaml"
    path.write_text(LONG_JOB.format(marker=marker(tmp_path)))
    return path


def marker(tmp_path: Path) -> str:
    return f"conveyor-test-job-{tmp_path.name}"


def wait_for(term: Terminal, condition: Callable[[], bool], what: str) -> None:
    """Until ``condition()`` (polled, reading the program's output meanwhile)."""
    while not condition():
        if term.proc.poll() is not None:
            raise AssertionError(f"the program ended before {what}: {term.raw[-2000:]!r}")
        term.pump(0.002)


def _maps(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return ""


def _threads(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/task"))
    except OSError:
        return 0


def no_traceback(term: Terminal) -> None:
    text = term.raw.decode(errors="replace")
    assert "Traceback" not in text and "KeyboardInterrupt" not in text, text[-3000:]


def job_processes(tmp_path: Path) -> list[str]:
    needle = marker(tmp_path).encode()
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if needle in (entry / "cmdline").read_bytes():
                    found.append(entry.name)
            except OSError:
                continue  # it ended meanwhile
    return found


def job_is_gone(tmp_path: Path) -> None:
    """No process of the job is left (the private server killed it on the way out)."""
    assert not job_processes(tmp_path), "job processes left behind"


@pytest.mark.slow
def test_ctrl_c_while_importing(tmp_path: Path) -> None:
    with Terminal(["run", str(long_workflow(tmp_path))], 120, 30) as term:
        wait_for(term, lambda: "cygrpc" in _maps(term.proc.pid), "grpc was imported")
        term.interrupt()
        code = term.read_to_end(60)
    no_traceback(term)
    assert code == 130, term.raw[-2000:]
    assert b"interrupted" in term.raw
    job_is_gone(tmp_path)


@pytest.mark.slow
def test_ctrl_c_while_the_private_server_starts(tmp_path: Path) -> None:
    with Terminal(["run", str(long_workflow(tmp_path))], 120, 30) as term:
        wait_for(term, lambda: _threads(term.proc.pid) > 1, "the server's threads started")
        term.interrupt()
        code = term.read_to_end(60)
    no_traceback(term)
    # Before StartPipelineBuild returned: 130; after: the build is cancelled (1).
    assert code in (130, 1), term.raw[-2000:]
    if code == 1:
        assert b"cancelling the build" in term.raw and b"CANCELLED" in term.raw
    job_is_gone(tmp_path)


@pytest.mark.slow
def test_ctrl_c_while_a_job_runs_cancels_the_build(tmp_path: Path) -> None:
    with Terminal(["run", str(long_workflow(tmp_path))], 120, 30) as term:
        term.read_until(b"started")
        wait_for(term, lambda: bool(job_processes(tmp_path)), "the job's loop ran")
        term.interrupt()
        code = term.read_to_end(60)  # the job ignores SIGTERM: it is killed after the grace
    no_traceback(term)
    assert code == 1, term.raw[-2000:]
    assert b"cancelling the build" in term.raw
    assert any("CANCELLED" in line for line in term.screen.display)
    job_is_gone(tmp_path)


@pytest.mark.slow
def test_second_ctrl_c_quits_at_once(tmp_path: Path) -> None:
    with Terminal(["run", str(long_workflow(tmp_path))], 120, 30) as term:
        term.read_until(b"started")
        term.interrupt()
        term.read_until(b"Ctrl-C again")
        term.interrupt()
        code = term.read_to_end(60)
    no_traceback(term)
    assert code == 130, term.raw[-2000:]
    job_is_gone(tmp_path)  # quitting still stops the jobs


@pytest.mark.slow
def test_ctrl_c_after_the_build_finished_keeps_its_result(tmp_path: Path) -> None:
    with Terminal(["run", "examples/hello.yaml", "--json"], 120, 30) as term:
        term.read_until(b'"status": "SUCCEEDED"')  # printed before the server stops
        term.interrupt()
        code = term.read_to_end(60)
    no_traceback(term)
    assert code == 0, term.raw[-2000:]
