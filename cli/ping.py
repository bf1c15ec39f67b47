"""`conveyor ping`: is a server answering? The scriptable readiness check.

It asks the standard gRPC health service (no token needed), so it works before anyone
has a token and from a Kubernetes exec probe alike. With `--wait S` it keeps asking
until the server answers SERVING or S seconds pass — what a script needs after starting
`conveyor serve &`.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from runtime_config import LISTEN

DEFAULT_ADDR = LISTEN  # where a server listens by default
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="conveyor ping",
        description="Check that a Conveyor server answers its health check (no token needed). "
                    "Exit 0 when it is serving, 1 otherwise. Takes no --json.")
    p.add_argument("--addr", default=None,
                   help=f"server address (default: CONVEYOR_ADDR, else {DEFAULT_ADDR})")
    p.add_argument("--wait", type=float, default=0.0, metavar="SECONDS",
                   help="keep trying for up to SECONDS until the server is serving (default 0)")
    return p


def _serving(address: str, timeout: float) -> bool:
    with grpc.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            reply = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=timeout,
                               wait_for_ready=True)
        except grpc.RpcError:
            return False
    return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    if args.wait < 0:
        print("conveyor ping: --wait must be >= 0", file=sys.stderr)
        return EXIT_USAGE
    address = args.addr or os.environ.get("CONVEYOR_ADDR") or DEFAULT_ADDR
    deadline = time.monotonic() + args.wait
    while True:
        # wait_for_ready lets one call ride out the server's start instead of a busy loop.
        if _serving(address, timeout=max(0.5, min(5.0, deadline - time.monotonic()))):
            print(f"{address}: serving")
            return EXIT_OK
        if time.monotonic() >= deadline:
            print(f"conveyor ping: no server serving at {address} "
                  "(is `conveyor serve` running? is CONVEYOR_ADDR right?)", file=sys.stderr)
            return EXIT_FAILED
