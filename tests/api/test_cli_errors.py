"""The client commands' errors and answers as processes against a real server (the `api`
fixture: the real servicers, interceptor and auth; no engine, so builds stay where the
test puts them)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from google.protobuf import any_pb2
from grpc_status import rpc_status

import store
from conveyor.v1 import common_pb2
from conveyor.v1 import pipeline_pb2 as pb
from rpc.pipeline_service import DEFAULT_REF
from store.records import LogChunkInit
from tests.api.conftest import Api, finished_build, pipeline
from tests.rpc.helpers import call_error
from workflow.states import BuildStatus

ROOT = Path(__file__).resolve().parents[2]
BAD = "jobs:\n  a:\n    needs: [c, d]\n    steps: [{run: x}]\n"
BAD_ONE = "jobs:\n  a:\n    needs: c\n    steps: [{run: x}]\n"


def conveyor(api: Api, *args: str, who: str = "alice", stdout: int | None = None
             ) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CONVEYOR_ADDR": api.address, "CONVEYOR_TOKEN": api.tokens[who]}
    env.pop("PYTHONUNBUFFERED", None)  # buffered, as a user's: see the closed-pipe test
    return subprocess.run([sys.executable, "-m", "cli.main", *args], cwd=ROOT, env=env,
                          stdout=stdout if stdout is not None else subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, timeout=60)


def test_workflow_errors_are_file_line_col_once_each_then_a_summary(
        api: Api, tmp_path: Path) -> None:
    bad = tmp_path / "ci.yml"
    bad.write_text(BAD)
    pipeline("web", "alice")
    for argv in (("pipeline", "create", "new", "-f", str(bad)),
                 ("pipeline", "update", "web", "-f", str(bad))):
        done = conveyor(api, *argv)
        assert done.returncode == 2
        assert done.stderr.splitlines() == [
            f"{bad}:3:13: jobs.a.needs[0]: unknown job 'c'",
            f"{bad}:3:16: jobs.a.needs[1]: unknown job 'd'",
            f"conveyor pipeline: 2 errors in {bad}",
        ]
        as_json = json.loads(conveyor(api, *argv, "--json").stdout)
        assert as_json == {"error": {
            "code": "INVALID_ARGUMENT", "message": f"2 errors in {bad}",
            "details": [
                {"file": str(bad), "line": 3, "column": 13, "path": "jobs.a.needs[0]",
                 "message": "unknown job 'c'"},
                {"file": str(bad), "line": 3, "column": 16, "path": "jobs.a.needs[1]",
                 "message": "unknown job 'd'"},
            ]}}


def test_one_workflow_error_from_stdin(api: Api, tmp_path: Path) -> None:
    env = {**os.environ, "CONVEYOR_ADDR": api.address, "CONVEYOR_TOKEN": api.tokens["alice"]}
    done = subprocess.run([sys.executable, "-m", "cli.main", "pipeline", "create", "new",
                           "-f", "-"], cwd=ROOT, env=env, input=BAD_ONE, text=True,
                          capture_output=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "<stdin>:3:12: jobs.a.needs: unknown job 'c'",
        "conveyor pipeline: 1 error in <stdin>",
    ]


def test_the_server_sends_workflow_errors_with_their_positions(api: Api) -> None:
    error = call_error(lambda: api.client("alice").pipelines.CreatePipeline(
        pb.CreatePipelineRequest(name="new", workflow_yaml=BAD)))
    status = rpc_status.from_call(error)
    assert status is not None
    found = []
    for packed in status.details:
        assert isinstance(packed, any_pb2.Any)
        message = common_pb2.WorkflowError()
        if packed.Unpack(message):
            found.append((message.line, message.column, message.path, message.message))
    assert found == [(3, 13, "jobs.a.needs[0]", "unknown job 'c'"),
                     (3, 16, "jobs.a.needs[1]", "unknown job 'd'")]


def test_trigger_input_errors(api: Api) -> None:
    pipeline("web", "alice")
    one = conveyor(api, "trigger", "web", "--input", "colour=red")
    assert one.returncode == 2
    assert one.stderr == ("conveyor trigger: inputs.colour: unknown input 'colour' "
                          "(declared: target)\n")
    two = conveyor(api, "trigger", "web", "-i", "colour=red", "-i", "target=moon", "--json")
    assert two.returncode == 2
    lines = two.stderr.splitlines()
    assert len(lines) == 3 and lines[0].startswith("inputs.colour: unknown input")
    assert lines[1].startswith("inputs.target: ") and "staging, prod" in lines[1]
    assert lines[2] == "conveyor trigger: 2 errors in the request to trigger web"
    error = json.loads(two.stdout)["error"]
    assert error["message"] == "2 errors in the request to trigger web"
    assert [d["path"] for d in error["details"]] == ["inputs.colour", "inputs.target"]


def test_server_refusals_are_one_line_and_json_under_json(api: Api) -> None:
    pipeline("web", "alice")
    missing = conveyor(api, "status", "999")
    assert missing.returncode == 1
    assert missing.stderr.count("\n") == 1 and missing.stderr.startswith("conveyor status: ")
    for argv in (("status", "999"), ("logs", "999"), ("cancel", "999"), ("retry", "999"),
                 ("pipeline", "show", "nope"), ("member", "list", "nope"),
                 ("builds", "--pipeline", "nope"), ("trigger", "nope")):
        done = conveyor(api, *argv, "--json")
        assert done.returncode == 1, argv
        assert done.stdout.count("\n") == 1  # one line: it may end a stream of JSON lines
        error = json.loads(done.stdout)["error"]
        assert error["code"] == "NOT_FOUND" and error["message"], argv
    denied = conveyor(api, "user", "create", "bob", "--json")
    assert json.loads(denied.stdout)["error"]["code"] == "PERMISSION_DENIED"
    bad = conveyor(api, "whoami", "--json", who="revoked")
    assert json.loads(bad.stdout)["error"]["code"] == "UNAUTHENTICATED"


def test_trigger_without_ref_builds_the_default_ref(api: Api) -> None:
    pipeline("web", "alice")
    done = conveyor(api, "trigger", "web", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["ref"] == DEFAULT_REF == "refs/heads/main"
    other = conveyor(api, "trigger", "web", "--ref", "refs/tags/v1", "--json")
    assert json.loads(other.stdout)["ref"] == "refs/tags/v1"
    # Every client agrees because the server decides: the API without a ref too.
    build = api.client("alice").pipelines.StartPipelineBuild(
        pb.StartPipelineBuildRequest(pipeline="web")).build
    assert build.ref == DEFAULT_REF


def test_cancel_says_what_happened(api: Api) -> None:
    web = pipeline("web", "alice")
    done_id = finished_build(web, BuildStatus.SUCCEEDED)
    again = conveyor(api, "cancel", str(done_id))
    assert again.returncode == 1
    assert again.stderr == (f"conveyor cancel: build {done_id} (#1 of web) had already "
                            "finished: SUCCEEDED — done\n")
    as_json = json.loads(conveyor(api, "cancel", str(done_id), "--json").stdout)
    assert as_json["error"]["code"] == "FAILED_PRECONDITION"

    queued, _ = store.create_build(web, workflow_yaml="", triggered_by="alice")
    cancelled = conveyor(api, "cancel", str(queued.id))
    assert (cancelled.returncode, cancelled.stdout) == (0, f"build {queued.id} is cancelled\n")
    twice = conveyor(api, "cancel", str(queued.id))
    assert twice.returncode == 1 and "had already finished: CANCELLED" in twice.stderr

    running, _ = store.create_build(web, workflow_yaml="", triggered_by="alice")
    store.claim_build(running.id, "test-executor", 30)
    asked = conveyor(api, "cancel", str(running.id))
    assert asked.returncode == 0, asked.stderr
    assert asked.stdout.startswith(f"build {running.id} was asked to cancel; ")
    assert store.get_build(running.id).cancel_requested
    as_json = json.loads(conveyor(api, "cancel", str(running.id), "--json").stdout)
    assert as_json["status"] == "BUILD_STATUS_RUNNING"


@pytest.mark.parametrize("argv", [
    ("builds",), ("pipeline", "list"), ("pipeline", "show", "web"), ("member", "list", "web"),
    ("status", "{build}"), ("logs", "{build}"), ("token", "list"), ("whoami",),
    ("trigger", "web"), ("builds", "--json"),
], ids=" ".join)
def test_output_into_a_closed_pipe_exits_quietly(api: Api, argv: tuple[str, ...]) -> None:
    web = pipeline("web", "alice")
    build = finished_build(web, BuildStatus.FAILED)
    job = store.list_jobs(build)[0]
    store.append_log_chunks([LogChunkInit(job.id, 1, ("compiling", "failed"))])
    read, write = os.pipe()
    os.close(read)
    try:
        done = conveyor(api, *(a.replace("{build}", str(build)) for a in argv), stdout=write)
    finally:
        os.close(write)
    assert done.returncode == 141, done.stderr
    assert done.stderr == ""
