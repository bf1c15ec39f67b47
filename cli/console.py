"""`conveyor console`: the operator debug console — live actors and runtime figures."""

from __future__ import annotations

import re
import sys
import time

from cli.client_common import EXIT_OK, Parser, add_connection, run
from conveyor.v1 import admin_pb2
from rpc.client import Client

STATE_WIDTH = 34
_DETAILED = re.compile(r"(?P<state>.+?) \((?P<detail>.+)\)")


def split_state(state: str) -> tuple[str, str]:
    """An actor's state for the STATE column, and what goes above the table instead: a
    detail in parentheses (the local backend's `running (isolation: bubblewrap sandbox
    …)`), or the whole state when even its short form does not fit the column."""
    found = _DETAILED.fullmatch(state)
    short, detail = (found["state"], found["detail"]) if found else (state, "")
    if len(short) > STATE_WIDTH:
        return short[: STATE_WIDTH - 1] + "…", state
    return short, detail


def render(info: admin_pb2.GetRuntimeInfoResponse,
           actors: admin_pb2.ListActorsResponse) -> list[str]:
    lines = [
        f"conveyor {info.version}  role={info.role}  up {info.uptime_seconds:.0f}s  "
        f"builds running={info.builds_running}  jobs running={info.jobs_running}  "
        f"queue depth={info.queue_depth}",
        f"executor={info.executor_id or '-'}  db={info.database}  queue={info.queue}  "
        f"backend={info.backend}",
    ]
    rows = []
    for a in actors.actors:
        state, detail = split_state(a.state)
        if detail:
            lines.append(f"{a.key}: {detail}")
        counters = " ".join(f"{k}={v}" for k, v in sorted(a.counters.items()))
        serves = f"{a.build_id or ''}{'/' + a.job_key if a.job_key else ''}" or "-"
        rows.append(f"{a.kind:<12} {a.key[:34]:<34} {state:<{STATE_WIDTH}} "
                    f"{a.age_seconds:>6.1f}s {a.mailbox:>5}  {serves:<9}  {counters}")
    lines += [
        "",
        f"{'KIND':<12} {'KEY':<34} {'STATE':<{STATE_WIDTH}} {'AGE':>7} {'MBOX':>5}  "
        "BUILD/JOB  COUNTERS",
        *rows,
        f"({len(actors.actors)} live actors)",
    ]
    return lines


def main(argv: list[str]) -> int:
    p = Parser(
        prog="conveyor console",
        description="Live table of a running server's actors (`conveyor serve`; needs an "
                    "instance admin's token, e.g. the one `conveyor admin bootstrap` prints).",
        epilog="There is no --json: for figures a program reads, call AdminService "
               "(GetRuntimeInfo, ListActors) or scrape /metrics.")
    add_connection(p)
    p.add_argument("--once", action="store_true", help="print one snapshot and exit")
    p.add_argument("--interval", type=float, default=1.0,
                   help="refresh period in seconds (default 1)")
    args = p.parse_args(argv)
    live = sys.stdout.isatty() and not args.once

    def body(client: Client) -> int:
        try:
            while True:
                info = client.admin.GetRuntimeInfo(admin_pb2.GetRuntimeInfoRequest(), timeout=5)
                actors = client.admin.ListActors(admin_pb2.ListActorsRequest(), timeout=5)
                text = "\n".join(render(info, actors))
                if live:
                    sys.stdout.write("\x1b[H\x1b[2J" + text + "\n")
                else:
                    print(text)
                sys.stdout.flush()
                if args.once:
                    return EXIT_OK
                time.sleep(args.interval)
        except KeyboardInterrupt:
            return EXIT_OK  # the way to leave the live table

    return run("conveyor console", args, body)
