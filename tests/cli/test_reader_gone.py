"""A build followed into a pipe whose reader goes away (`conveyor run x.yaml | head -3`,
`conveyor trigger p --follow | head -1`): exit 141 and nothing on stderr, as
`git log | head -1`; `run` cancels its build (nobody reads it any more) and stops its
private server and the jobs; `trigger --follow` leaves the build to the server.

The job prints a line every tenth of a second, forever: the test closes the pipe once
the first line arrived, and the next line finds the reader gone.
"""

from __future__ import annotations

import os
import select
import subprocess
import sys
import time
from pathlib import Path

import store
from conveyor.v1 import common_pb2, pipeline_pb2
from rpc.client import connect
from tests.cli.test_run_interrupt import job_processes, marker
from tests.cli.test_run_private import opened
from tests.cli.test_serve_console import server as server

ROOT = Path(__file__).resolve().parents[2]
CHATTY = (
    "jobs:\n"
    "  chatty:\n"
    "    steps:\n"
    "      - run: |\n"
    "          echo first\n"
    "          exec sh -c 'while :; do echo more; sleep 0.1; done' {marker}\n"
)


def chatty(tmp_path: Path) -> Path:
    path = tmp_path / "chatty.yaml"
    path.write_text(CHATTY.format(marker=marker(tmp_path)))
    return path


def follow_until_first_line_then_close(args: list[str], env: dict[str, str],
                                       timeout: float = 120) -> tuple[int, str]:
    """Run ``conveyor ARGS``, read its stdout until the job's first line, close the
    pipe (the reader is gone), and return the exit code and stderr."""
    proc = subprocess.Popen([sys.executable, "-m", "cli.main", *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    try:
        seen = b""
        deadline = time.monotonic() + timeout
        while b"| first" not in seen:
            ready, _, _ = select.select([proc.stdout], [], [], deadline - time.monotonic())
            chunk = os.read(proc.stdout.fileno(), 65536) if ready else b""
            assert chunk, f"no first line: {seen!r}"
            seen += chunk
        proc.stdout.close()
        code = proc.wait(timeout)
        return code, proc.stderr.read().decode(errors="replace")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stderr.close()


def test_run_into_a_closed_pipe_cancels_the_build_and_exits_141(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'run.db'}"
    env = {key: value for key, value in os.environ.items() if not key.startswith("CONVEYOR_")}
    code, stderr = follow_until_first_line_then_close(
        ["run", str(chatty(tmp_path)), "--database-url", url], env)
    assert code == 141 and stderr == "", stderr
    assert not job_processes(tmp_path), "job processes left behind"
    with opened(url):
        assert store.get_build(1).status == "CANCELLED"


def test_trigger_follow_into_a_closed_pipe_exits_141_and_leaves_the_build(
        tmp_path: Path, server: tuple[subprocess.Popen[str], str, str]) -> None:
    _, address, token = server
    with connect(address, token) as client:
        client.pipelines.CreatePipeline(pipeline_pb2.CreatePipelineRequest(
            name="chatty", workflow_yaml=chatty(tmp_path).read_text()), timeout=10)
        env = {**{key: value for key, value in os.environ.items()
                  if not key.startswith("CONVEYOR_")},
               "CONVEYOR_ADDR": address, "CONVEYOR_TOKEN": token}
        code, stderr = follow_until_first_line_then_close(["trigger", "chatty", "--follow"],
                                                          env)
        assert code == 141 and stderr == "", stderr
        build = client.pipelines.GetBuild(pipeline_pb2.GetBuildRequest(build_id=1),
                                          timeout=10).build
        assert build.status == common_pb2.BUILD_STATUS_RUNNING  # the server's, going on
        client.pipelines.CancelBuild(pipeline_pb2.CancelBuildRequest(build_id=1), timeout=10)
        for message in client.pipelines.WatchBuild(pipeline_pb2.WatchBuildRequest(build_id=1),
                                                   timeout=60):
            build = message.build
        assert build.status == common_pb2.BUILD_STATUS_CANCELLED
