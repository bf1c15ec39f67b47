"""`conveyor run WORKFLOW.yaml`: run a workflow locally, end to end, with one command.

Starts an all-in-one runtime on the embedded defaults (a temporary SQLite database unless
CONVEYOR_DATABASE_URL is set, the in-memory queue, the local process backend), registers
the file as a pipeline, triggers it through the real gRPC StartPipelineBuild, and
follows it with WatchBuild and StreamBuildLogs. Exit code: 0 SUCCEEDED, 1 FAILED /
CANCELLED / ERROR, 2 invalid workflow or usage.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import signal
import sys
import tempfile
from pathlib import Path
from typing import Any

import grpc

import workflow
from cli.follow import BuildFollower
from cli.view import BUILD_STATUS, JOB_STATUS, STEP_STATUS
from conveyor.v1 import common_pb2, pipeline_pb2
from rpc.client import connect
from runtime import Config, ConfigError, Runtime


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="conveyor run", description=__doc__.split("\n\n")[0])
    p.add_argument("file", help="workflow file (GitHub Actions syntax)")
    p.add_argument("--input", "-i", action="append", default=[], metavar="NAME=VALUE",
                   help="a workflow_dispatch input (repeatable)")
    p.add_argument("--json", action="store_true",
                   help="print one JSON object with the result on stdout; logs go to stderr")
    p.add_argument("--ref", default="refs/heads/main")
    p.add_argument("--sha", default="")
    return p


def parse_inputs(pairs: list[str]) -> dict[str, str]:
    inputs: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise ValueError(f"--input {pair!r}: expected NAME=VALUE")
        inputs[name] = value
    return inputs


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    path = Path(args.file)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        print(f"conveyor run: cannot read {path}: {exc}", file=sys.stderr)
        return 2
    errors = workflow.validate(text)
    if errors:
        for error in errors:
            print(error.format(str(path)), file=sys.stderr)
        return 2
    try:
        inputs = parse_inputs(args.input)
    except ValueError as exc:
        print(f"conveyor run: {exc}", file=sys.stderr)
        return 2

    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")
    with tempfile.TemporaryDirectory(prefix="conveyor-run-") as tmp:
        overrides: dict[str, Any] = {
            "role": "all",
            "listen": "127.0.0.1:0",
            "queue_url": "memory://",
            "workdir": Path(tmp) / "work",
            "local_trusted": True,  # the caller's own jobs on their machine: no sandbox
        }
        if not os.environ.get("CONVEYOR_DATABASE_URL"):
            overrides["database_url"] = f"sqlite:///{Path(tmp) / 'conveyor.db'}"
        try:
            config = Config.from_env(**overrides)
        except ConfigError as exc:
            print(f"conveyor run: {exc}", file=sys.stderr)
            return 2
        runtime = Runtime(config)
        try:
            runtime.start()
            return _run(runtime, path, text, inputs, args)
        finally:
            runtime.stop()


def _pipeline_name(path: Path) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", path.stem).strip("-") or "workflow"


def _run(runtime: Runtime, path: Path, text: str, inputs: dict[str, str],
         args: argparse.Namespace) -> int:
    out = sys.stderr if args.json else sys.stdout
    # The embedded runtime's own admin: nobody has to think about tokens here.
    with connect(runtime.address, runtime.issue_local_token()) as client:
        name = _pipeline_name(path)
        try:
            client.pipelines.CreatePipeline(
                pipeline_pb2.CreatePipelineRequest(name=name, workflow_yaml=text))
        except grpc.RpcError as exc:
            if exc.code() != grpc.StatusCode.ALREADY_EXISTS:
                raise
            client.pipelines.UpdatePipeline(
                pipeline_pb2.UpdatePipelineRequest(name=name, workflow_yaml=text))
        try:
            response = client.pipelines.StartPipelineBuild(pipeline_pb2.StartPipelineBuildRequest(
                pipeline=name, ref=args.ref, sha=args.sha, inputs=inputs))
        except grpc.RpcError as exc:
            if exc.code() == grpc.StatusCode.INVALID_ARGUMENT:
                print(f"conveyor run: {exc.details()}", file=sys.stderr)
                return 2
            raise
        build = response.build
        live = out.isatty() and not args.json
        follower = BuildFollower(client.pipelines, build, out=out, live=live)
        interrupted = {"count": 0}

        def on_sigint(_signum: int, _frame: Any) -> None:
            interrupted["count"] += 1
            if interrupted["count"] == 1:
                print("\ncancelling the build (Ctrl-C again to quit at once)…", file=sys.stderr)
                client.pipelines.CancelBuild(pipeline_pb2.CancelBuildRequest(build_id=build.id))
            else:
                raise KeyboardInterrupt

        previous = signal.signal(signal.SIGINT, on_sigint)
        try:
            follower.run()
        except KeyboardInterrupt:
            return 1
        finally:
            signal.signal(signal.SIGINT, previous)
        final = client.pipelines.GetBuild(pipeline_pb2.GetBuildRequest(build_id=build.id)).build
    for error in follower.errors:
        print(f"conveyor run: {error}", file=sys.stderr)
    status = BUILD_STATUS.get(final.status, "?")
    if args.json:
        print(json.dumps(result_json(final)))
    elif live:
        pass  # the live table already shows the final state
    elif final.reason and status != BUILD_STATUS.get(follower.build.status):
        print(f"build #{final.number}: {status} — {final.reason}", file=out)
    return 0 if status == "SUCCEEDED" else 1


def result_json(build: common_pb2.Build) -> dict[str, Any]:
    return {
        "build": build.id,
        "status": BUILD_STATUS.get(build.status, "?"),
        "reason": build.reason,
        "jobs": [
            {
                "key": job.key,
                "name": job.name,
                "matrix": {k: json.loads(v) for k, v in job.matrix.items()},
                "status": JOB_STATUS.get(job.status, "?"),
                "reason": job.reason,
                "exit_code": job.exit_code if job.HasField("exit_code") else None,
                "outputs": dict(job.outputs),
                "steps": [
                    {
                        "name": step.name,
                        "status": STEP_STATUS.get(step.status, "?"),
                        "exit_code": step.exit_code if step.HasField("exit_code") else None,
                    }
                    for step in job.steps
                ],
            }
            for job in build.jobs
        ],
    }
