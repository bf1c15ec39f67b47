"""`conveyor trigger|builds|status|logs|cancel|retry`: builds over gRPC.

`trigger --follow` and `retry --follow` show the build live (like `conveyor run`) and
exit 0 when it succeeded, 1 otherwise. `cancel` exits 1 when the build had finished
already.
"""

from __future__ import annotations

import json
import sys
import time

from cli.client_common import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    CliError,
    Parser,
    UsageError,
    add_common,
    colour_on,
    parse_inputs,
    print_json,
    run,
    table,
    to_json,
)
from cli.errors import quiet_broken_pipe
from cli.follow import BuildFollower
from cli.view import (
    BUILD_STATUS,
    TableStyle,
    build_status,
    job_table,
    prefix,
    prefix_width,
    shown_text,
)
from conveyor.v1 import common_pb2, pipeline_pb2
from rpc.client import Client

STATUS_NAMES = {name: value for value, name in BUILD_STATUS.items() if value}
FINISHED = frozenset({"SUCCEEDED", "FAILED", "CANCELLED", "ERROR"})
BUILD_HELP = "the build's id (as `conveyor builds` lists it; not its #number)"


def _build_line(build: common_pb2.Build) -> str:
    reason = f" — {build.reason}" if build.reason else ""
    attempt = f" (attempt {build.attempt})" if build.attempt > 1 else ""
    return (f"build {build.id}: #{build.number} of {build.pipeline_name}{attempt} "
            f"{build_status(build)}{reason}")


def _follow(client: Client, build: common_pb2.Build, as_json: bool) -> int:
    out = sys.stderr if as_json else sys.stdout
    follower = BuildFollower(client.pipelines, build, out=out,
                             live=out.isatty() and not as_json)
    try:
        # The output's reader gone (`| head`) ends the following at once.
        follower.run(follower.reader_gone.is_set)
    except KeyboardInterrupt:
        # Unlike `conveyor run`, the build belongs to the server: leaving it is not
        # cancelling it. Say so, and how.
        print(f"\nstopped following; build {build.id} goes on "
              f"(`conveyor cancel {build.id}` cancels it)", file=sys.stderr)
        return EXIT_INTERRUPTED
    if follower.reader_gone.is_set():
        return quiet_broken_pipe()  # the build goes on, as after Ctrl-C
    final = client.pipelines.GetBuild(pipeline_pb2.GetBuildRequest(build_id=build.id)).build
    for error in follower.errors:
        print(f"conveyor: {error}", file=sys.stderr)
    if as_json:
        print_json(to_json(final))
    else:
        print(_build_line(final), file=out)
    return EXIT_OK if build_status(final) == "SUCCEEDED" else EXIT_FAILED


def trigger_main(argv: list[str]) -> int:
    p = Parser(prog="conveyor trigger", description="Start a build of a pipeline.")
    p.add_argument("pipeline", help="the pipeline's name")
    p.add_argument("--ref", default="",
                   help="the git ref the build is for, its github.ref "
                        "(default: refs/heads/main, chosen by the server)")
    p.add_argument("--sha", default="",
                   help="the commit the build is for, its github.sha (default: none)")
    p.add_argument("--input", "-i", action="append", default=[], metavar="NAME=VALUE",
                   help="a workflow_dispatch input (repeatable)")
    p.add_argument("--request-id", default="", help="retrying with the same id starts no twin")
    p.add_argument("--follow", action="store_true", help="show it live until it finishes")
    add_common(p)
    args = p.parse_args(argv)

    def body(client: Client) -> int:
        build = client.pipelines.StartPipelineBuild(pipeline_pb2.StartPipelineBuildRequest(
            pipeline=args.pipeline, ref=args.ref, sha=args.sha,
            inputs=parse_inputs(args.input), request_id=args.request_id)).build
        if args.follow:
            return _follow(client, build, args.json)
        print_json(to_json(build)) if args.json else print(_build_line(build))
        return EXIT_OK

    return run("conveyor trigger", args, body, where=f"the request to trigger {args.pipeline}")


def builds_main(argv: list[str]) -> int:
    p = Parser(prog="conveyor builds", description="List builds, newest first.")
    p.add_argument("--pipeline", "-p", default="", help="only this pipeline's builds")
    p.add_argument("--status", choices=sorted(s.lower() for s in STATUS_NAMES),
                   help="only builds in this state")
    p.add_argument("--user", default="", help="triggered by this user")
    p.add_argument("--limit", type=int, default=20, help="how many (default 20)")
    add_common(p)
    args = p.parse_args(argv)

    def body(client: Client) -> int:
        if args.limit < 1:
            raise UsageError(f"--limit must be at least 1, got {args.limit}")
        found: list[common_pb2.Build] = []
        token = ""
        while len(found) < args.limit:
            page = client.pipelines.ListBuilds(pipeline_pb2.ListBuildsRequest(
                pipeline=args.pipeline, triggered_by=args.user, page_token=token,
                status=STATUS_NAMES[args.status.upper()] if args.status else 0,  # type: ignore[arg-type]
                page_size=min(args.limit - len(found), 500)))
            found.extend(page.builds)
            token = page.next_page_token
            if not token:
                break
        if args.json:
            print_json([to_json(b) for b in found])
            return EXIT_OK
        rows = [[str(b.id), b.pipeline_name, f"#{b.number}", build_status(b), str(b.attempt),
                 b.triggered_by, b.ref, b.reason] for b in found]
        print("\n".join(table(["ID", "PIPELINE", "NUMBER", "STATUS", "ATTEMPT", "BY", "REF",
                               "REASON"], rows, status_column=3)))
        return EXIT_OK

    return run("conveyor builds", args, body)


def _build_id(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise UsageError(f"BUILD must be a build id (a number), got {text!r}") from None
    if value <= 0:
        raise UsageError(f"BUILD must be a positive build id, got {value}")
    return value


def status_main(argv: list[str]) -> int:
    p = Parser(prog="conveyor status", description="A build and its jobs.")
    p.add_argument("build", help=BUILD_HELP)
    add_common(p)
    args = p.parse_args(argv)

    def body(client: Client) -> int:
        build = client.pipelines.GetBuild(
            pipeline_pb2.GetBuildRequest(build_id=_build_id(args.build))).build
        if args.json:
            print_json(to_json(build))
        else:
            print(f"build {build.id}  attempt {build.attempt}  by {build.triggered_by or '-'}  "
                  f"ref {build.ref or '-'}")
            print("\n".join(job_table(build, TableStyle(colour=colour_on()), time.time())))
        return EXIT_OK

    return run("conveyor status", args, body)


def logs_main(argv: list[str]) -> int:
    p = Parser(prog="conveyor logs",
               description="A build's log lines (with --json: one JSON object a line).")
    p.add_argument("build", help=BUILD_HELP)
    p.add_argument("--job", default="", help="one job's key (default: every job)")
    p.add_argument("--from-line", type=int, default=0, help="start at this line (per job)")
    p.add_argument("--follow", "-f", action="store_true", help="keep going until it finishes")
    add_common(p)
    args = p.parse_args(argv)

    def body(client: Client) -> int:
        build_id = _build_id(args.build)
        prefixed = not args.json and not args.job
        keys: set[str] = set()
        if prefixed:
            # Prefixes padded to the longest job key from the first line on, as `run` and
            # `--follow` show them (the build's jobs so far; a later one may widen them).
            build = client.pipelines.GetBuild(pipeline_pb2.GetBuildRequest(build_id=build_id))
            keys.update(job.key for job in build.build.jobs)
        width = prefix_width(keys)
        call = client.pipelines.StreamBuildLogs(pipeline_pb2.StreamBuildLogsRequest(
            build_id=build_id, job_key=args.job, from_line=args.from_line,
            follow=args.follow))
        for message in call:
            for line in message.lines:
                if args.json:
                    print_json_line(line)
                elif args.job:  # one job's log as it was printed: pieces joined again
                    print(line.text, end="" if line.continued else "\n")
                else:
                    if line.job_key not in keys:
                        keys.add(line.job_key)
                        width = prefix_width(keys)
                    print(f"{prefix(line.job_key, width)}{shown_text(line)}")
            sys.stdout.flush()
        return EXIT_OK

    return run("conveyor logs", args, body)


def print_json_line(line: common_pb2.LogLine) -> None:
    print(json.dumps({"job": line.job_key, "number": line.number, "text": line.text,
                      "continued": line.continued}))


def cancel_main(argv: list[str]) -> int:
    return _act("cancel", argv)


def retry_main(argv: list[str]) -> int:
    return _act("retry", argv)


def _act(action: str, argv: list[str]) -> int:
    what = {"cancel": "Cancel a build: a queued one at once, a running one's jobs are "
                      "stopped. Exits 1 when the build had finished already.",
            "retry": "Re-run a finished build's failed and cancelled jobs (and their "
                     "dependents) as a new attempt."}
    p = Parser(prog=f"conveyor {action}", description=what[action])
    p.add_argument("build", help=BUILD_HELP)
    if action == "retry":
        p.add_argument("--follow", action="store_true", help="show it live until it finishes")
    add_common(p)
    args = p.parse_args(argv)

    def body(client: Client) -> int:
        build_id = _build_id(args.build)
        if action == "cancel":
            return _cancel(client, build_id, args.json)
        build = client.pipelines.RetryBuild(
            pipeline_pb2.RetryBuildRequest(build_id=build_id)).build
        if args.follow:
            return _follow(client, build, args.json)
        print_json(to_json(build)) if args.json else print(_build_line(build))
        return EXIT_OK

    return run(f"conveyor {action}", args, body)


def _cancel(client: Client, build_id: int, as_json: bool) -> int:
    # CancelBuild answers a finished build unchanged (it is idempotent), and a build
    # cancelled before it started looks the same afterwards: only the state before the
    # call tells "had finished" from "cancelled now".
    build = client.pipelines.GetBuild(pipeline_pb2.GetBuildRequest(build_id=build_id)).build
    if build_status(build) not in FINISHED:
        build = client.pipelines.CancelBuild(
            pipeline_pb2.CancelBuildRequest(build_id=build_id)).build
        if build_status(build) in FINISHED - {"CANCELLED"}:
            pass  # it finished on its own while the request travelled
        elif as_json:
            print_json(to_json(build))
            return EXIT_OK
        elif build_status(build) == "CANCELLED":
            print(f"build {build_id} is cancelled")
            return EXIT_OK
        else:
            print(f"build {build_id} was asked to cancel; its running jobs are being "
                  f"stopped (`conveyor status {build_id}` shows when they have)")
            return EXIT_OK
    reason = f" — {build.reason}" if build.reason else ""
    raise CliError(f"build {build_id} (#{build.number} of {build.pipeline_name}) had already "
                   f"finished: {build_status(build)}{reason}", code="FAILED_PRECONDITION")
