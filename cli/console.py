"""`conveyor console`: the operator debug console — live actors and runtime figures."""

from __future__ import annotations

import argparse
import os
import sys
import time

import grpc

from conveyor.v1 import admin_pb2
from rpc.client import connect


def render(info: admin_pb2.GetRuntimeInfoResponse,
           actors: admin_pb2.ListActorsResponse) -> list[str]:
    lines = [
        f"conveyor {info.version}  role={info.role}  up {info.uptime_seconds:.0f}s  "
        f"builds running={info.builds_running}  jobs running={info.jobs_running}  "
        f"queue depth={info.queue_depth}",
        f"executor={info.executor_id or '-'}  db={info.database}  queue={info.queue}  "
        f"backend={info.backend}",
        "",
        f"{'KIND':<12} {'KEY':<34} {'STATE':<34} {'AGE':>7} {'MBOX':>5}  BUILD/JOB  COUNTERS",
    ]
    for a in actors.actors:
        counters = " ".join(f"{k}={v}" for k, v in sorted(a.counters.items()))
        serves = f"{a.build_id or ''}{'/' + a.job_key if a.job_key else ''}" or "-"
        lines.append(f"{a.kind:<12} {a.key[:34]:<34} {a.state[:34]:<34} "
                     f"{a.age_seconds:>6.1f}s {a.mailbox:>5}  {serves:<9}  {counters}")
    lines.append(f"({len(actors.actors)} live actors)")
    return lines


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(
        prog="conveyor console",
        description="Live table of a running server's actors (`conveyor serve`; needs an "
                    "instance admin's token, e.g. the one `conveyor admin bootstrap` prints).")
    p.add_argument("--addr", default=os.environ.get("CONVEYOR_ADDR", "127.0.0.1:50051"),
                   help="server address (CONVEYOR_ADDR)")
    p.add_argument("--token", default=os.environ.get("CONVEYOR_TOKEN"),
                   help="an instance admin's API token (CONVEYOR_TOKEN)")
    p.add_argument("--once", action="store_true", help="print one snapshot and exit")
    p.add_argument("--interval", type=float, default=1.0, help="refresh period in seconds")
    args = p.parse_args(argv)
    live = sys.stdout.isatty() and not args.once
    with connect(args.addr, args.token) as client:
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
                    return 0
                time.sleep(args.interval)
        except grpc.RpcError as exc:
            print(f"conveyor console: {args.addr}: {exc.code().name}: {exc.details()}",
                  file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            return 0
