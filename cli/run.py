"""`conveyor run WORKFLOW.yaml`: run a workflow locally, end to end, with one command.

Starts a private all-in-one server (a temporary SQLite database, the in-memory queue,
the local process backend; none of the server's CONVEYOR_* variables apply), registers
the file as a pipeline, triggers it through the real gRPC StartPipelineBuild, and
follows it with WatchBuild and StreamBuildLogs.

Exit code: 0 SUCCEEDED, 1 FAILED / CANCELLED / ERROR, 2 invalid workflow or usage, 130
interrupted before the build existed (Ctrl-C once a build runs cancels it; twice quits
at once), 141 when the output's reader went away (`| head -3`): as with Ctrl-C, nobody
follows the build any more, so it is cancelled, and quietly waited for until its jobs
have stopped.
"""

from __future__ import annotations

# Only light modules (and cli.errors, which the first check needs) here: the heavy ones
# (grpc, the runtime) are imported inside main(), whose Ctrl-C handler says
# "interrupted".
import argparse
import contextlib
import json
import logging
import re
import shutil
import signal
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cli.errors import EXIT_INTERRUPTED, CliError, Parser, report, workflow_failure

if TYPE_CHECKING:
    from conveyor.v1 import common_pb2
    from rpc.client import Client
    from runtime import Runtime

PROG = "conveyor run"
NOTE = "the local backend runs jobs on this host"


def parser() -> argparse.ArgumentParser:
    p = Parser(prog=PROG, description=__doc__.split("\n\n")[0],
               epilog=__doc__.split("\n\n")[2].strip())
    p.add_argument("file", help="workflow file (GitHub Actions syntax)")
    p.add_argument("--input", "-i", action="append", default=[], metavar="NAME=VALUE",
                   help="a workflow_dispatch input (repeatable)")
    p.add_argument("--json", action="store_true",
                   help="print one JSON object with the result on stdout; logs go to stderr")
    p.add_argument("--ref", default="refs/heads/main",
                   help="the git ref of the build (github.ref; default refs/heads/main)")
    p.add_argument("--sha", default="", help="the commit of the build (github.sha)")
    p.add_argument("--database-url", metavar="URL",
                   help="keep the run's builds in this database instead of a temporary one; "
                        "it must be the run's own (CONVEYOR_DATABASE_URL is ignored: "
                        "`conveyor run` never writes to a server's store)")
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
    try:
        return _main(args)
    except CliError as exc:
        # Like every command: one line each on stderr, then the summary; with --json
        # also {"error": ...} on stdout (in place of the result).
        return report(PROG, exc, as_json=args.json)
    except KeyboardInterrupt:  # while reading the file, importing, checking the store
        return _interrupted()


def _interrupted() -> int:
    print("\nconveyor run: interrupted", file=sys.stderr)
    return EXIT_INTERRUPTED


def _main(args: argparse.Namespace) -> int:
    path = Path(args.file)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise CliError(f"cannot read {path}: {exc}") from None
    import workflow

    errors = workflow.validate(text)
    if errors:
        raise workflow_failure(errors, str(path))
    try:
        inputs = parse_inputs(args.input)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    for note in ignored_settings(text):
        print(note, file=sys.stderr)
    sys.stderr.flush()

    logging.basicConfig(level=logging.WARNING, stream=_CurrentStderr(),
                        format="%(levelname)s %(name)s: %(message)s")
    from cli import run_store
    from runtime import ConfigError, Runtime

    if args.database_url:
        try:
            run_store.check_own_store(args.database_url)
        except run_store.SharedStore as exc:
            raise CliError(f"--database-url: {exc}") from None
    tmp = Path(tempfile.mkdtemp(prefix="conveyor-run-"))
    runtime: Runtime | None = None
    try:
        try:
            config = run_store.run_config(tmp, args.database_url)
        except ConfigError as exc:
            raise CliError(str(exc)) from None
        # From here on Ctrl-C never raises: an exception in the middle of starting the
        # server could leave actors running that nobody stops (and the process would
        # not exit). Start-up is short; a Ctrl-C during it aborts the run right after.
        interrupts = _Interrupts()
        signal.signal(signal.SIGINT, interrupts.handler)
        runtime = Runtime(config)
        runtime.start()
        return _run(runtime, path, text, inputs, args, interrupts)
    finally:
        # Ctrl-C now would leave the private server's threads and the jobs' processes
        # behind: stopping is bounded, so it is not interrupted.
        with _sigint_deferred():
            if runtime is not None:
                # A stream the run left (Ctrl-C twice) can outlive the gRPC server's
                # grace and find the store closed: the server's teardown, not the user's.
                logging.getLogger("rpc").setLevel(logging.CRITICAL)
                runtime.stop()
            shutil.rmtree(tmp, ignore_errors=True)


class _CurrentStderr:
    """Whatever ``sys.stderr`` is now: while the live view runs it is rich's proxy,
    which prints above the view instead of through it."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


@contextlib.contextmanager
def _sigint_deferred() -> Iterator[None]:
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def ignored_settings(text: str) -> list[str]:
    """One line per job whose `container` or `runs-on` the local backend ignores."""
    from workflow.yamlsafe import load_document, to_plain

    document = to_plain(load_document(text).root)
    jobs = document.get("jobs") if isinstance(document, dict) else None
    notes = []
    for key, job in (jobs or {}).items():
        if not isinstance(job, dict):
            continue
        ignored = []
        container = job.get("container")
        if isinstance(container, dict):
            container = container.get("image")
        if container not in (None, ""):
            ignored.append(f"container {_setting(container)}")
        if job.get("runs-on") not in (None, ""):
            ignored.append(f"runs-on {_setting(job['runs-on'])}")
        if ignored:
            notes.append(f"job {key}: {' and '.join(ignored)} ignored: {NOTE}")
    return notes


def _setting(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(_setting(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}: {_setting(v)}" for k, v in value.items())
    return str(value)


def _pipeline_name(path: Path) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", path.stem).strip("-") or "workflow"


def _run(runtime: Runtime, path: Path, text: str, inputs: dict[str, str],
         args: argparse.Namespace, interrupts: _Interrupts) -> int:
    import grpc

    from cli import run_store
    from cli.client_common import rpc_failure
    from conveyor.v1 import pipeline_pb2
    from rpc.client import connect

    if interrupts.count:
        return _interrupted()
    with connect(runtime.address, run_store.issue_token()) as client:
        name = _pipeline_name(path)
        try:
            try:
                client.pipelines.CreatePipeline(
                    pipeline_pb2.CreatePipelineRequest(name=name, workflow_yaml=text))
            except grpc.RpcError as exc:
                if exc.code() != grpc.StatusCode.ALREADY_EXISTS:
                    raise
                # Only in a --database-url store, and only a pipeline an earlier run made
                # (`local` is no instance admin: it may update no other).
                client.pipelines.UpdatePipeline(
                    pipeline_pb2.UpdatePipelineRequest(name=name, workflow_yaml=text))
            if interrupts.count:  # no build yet: none is started
                return _interrupted()
            response = client.pipelines.StartPipelineBuild(pipeline_pb2.StartPipelineBuildRequest(
                pipeline=name, ref=args.ref, sha=args.sha, inputs=inputs))
            # A Ctrl-C from here on cancels the build (at the follower's first tick).
            return _follow(client, response.build, text, inputs, args, interrupts)
        except grpc.RpcError as exc:
            # The private server refused (a bad --input: INVALID_ARGUMENT, exit 2), in
            # the words and format a server's refusal has in every command.
            raise rpc_failure(exc, runtime.address, file=str(path)) from None


class _Interrupts:
    """Ctrl-C once the private server starts: the handler only counts (raising could
    leave threads behind; printing or calling the server from a signal handler could
    re-enter what the main thread is doing). Before the build exists a count aborts
    the run; then the follower's tick cancels the build, or quits on a second one."""

    def __init__(self) -> None:
        self.count = 0
        self.acted = 0

    def handler(self, _signum: int, _frame: Any) -> None:
        self.count += 1


def _follow(client: Client, build: common_pb2.Build, text: str, inputs: dict[str, str],
            args: argparse.Namespace, interrupts: _Interrupts) -> int:
    import grpc

    from cli.errors import quiet_broken_pipe
    from cli.follow import BuildFollower
    from cli.view import BUILD_STATUS, plain_build_line
    from conveyor.v1 import pipeline_pb2

    out = sys.stderr if args.json else sys.stdout
    live = out.isatty() and not args.json
    follower = BuildFollower(client.pipelines, build, out=out, live=live,
                             keys=_plan_keys(text, inputs))
    reader_gone_seen = False

    def cancel() -> None:
        try:
            client.pipelines.CancelBuild(
                pipeline_pb2.CancelBuildRequest(build_id=build.id), timeout=10)
        except grpc.RpcError as exc:
            print(f"conveyor run: cancel: {exc.details()}", file=sys.stderr)

    def tick() -> bool:
        nonlocal reader_gone_seen
        if follower.reader_gone.is_set() and not reader_gone_seen:
            # Like Ctrl-C: nobody reads the build any more (`| head` has its lines), so
            # it is cancelled, and followed (unseen) until its jobs have stopped. From
            # here on nothing is shown, stderr included, as `git log | head` shows none.
            reader_gone_seen = True
            quiet_broken_pipe()
            cancel()
        if interrupts.count > interrupts.acted:
            interrupts.acted = interrupts.count
            if interrupts.count >= 2:
                print("conveyor run: quitting; the build's jobs are stopped", file=sys.stderr)
                return True
            print("conveyor run: cancelling the build (Ctrl-C again to quit at once)…",
                  file=sys.stderr)
            cancel()
        return False

    follower.run(tick)
    if interrupts.count >= 2:
        return EXIT_INTERRUPTED
    if follower.reader_gone.is_set():
        return quiet_broken_pipe()
    final = client.pipelines.GetBuild(pipeline_pb2.GetBuildRequest(build_id=build.id)).build
    for error in follower.errors:
        print(f"conveyor run: {error}", file=sys.stderr)
    status = BUILD_STATUS.get(final.status, "?")
    if args.json:
        print(json.dumps(result_json(final)))
    elif not live and plain_build_line(final) != plain_build_line(follower.build):
        print(plain_build_line(final), file=out)  # the watch ended before the last change
    return 0 if status == "SUCCEEDED" else 1


def _plan_keys(text: str, inputs: dict[str, str]) -> list[str]:
    """The build's job keys as planned here, so that log prefixes align from the start
    (the server's plan is the one that runs; this one only sizes the prefixes)."""
    import workflow

    try:
        plan, _ = workflow.load_for_build(text, inputs)
    except (workflow.WorkflowInvalid, ValueError):
        return []  # the server says what is wrong with the inputs
    return [job.key for job in plan.jobs]


def result_json(build: common_pb2.Build) -> dict[str, Any]:
    from cli.view import BUILD_STATUS, JOB_STATUS, STEP_STATUS

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
