"""`conveyor ping`: is a server answering? The scriptable readiness check.

It asks the standard gRPC health service (no token needed), so it works before anyone
has a token and from a Kubernetes exec probe alike. With `--wait S` it keeps asking
until the server answers SERVING or S seconds pass — what a script needs after starting
`conveyor serve &`. A gRPC server that is not Conveyor's (another program has the port,
and the `serve &` failed) is told apart at once: exit 1, saying so.
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


# Every role serves one of these (rpc/server.py registers each with the health service).
CONVEYOR_SERVICES = ("conveyor.v1.PipelineService", "conveyor.v1.ExecutorService")
SERVING, DOWN, FOREIGN = "serving", "down", "foreign"


def _state(address: str, timeout: float) -> str:
    """SERVING; DOWN (nothing answers yet, or not serving); FOREIGN: a gRPC server that
    is no Conveyor server answers (the port is another program's)."""
    with grpc.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            reply = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=timeout,
                               wait_for_ready=True)
        except grpc.RpcError as exc:
            return FOREIGN if exc.code() == grpc.StatusCode.UNIMPLEMENTED else DOWN
        if reply.status != health_pb2.HealthCheckResponse.SERVING:
            return DOWN
        for service in CONVEYOR_SERVICES:
            try:
                reply = stub.Check(health_pb2.HealthCheckRequest(service=service),
                                   timeout=timeout)
            except grpc.RpcError as exc:
                if exc.code() == grpc.StatusCode.NOT_FOUND:
                    continue  # not this role's service
                return DOWN
            return SERVING if reply.status == health_pb2.HealthCheckResponse.SERVING else DOWN
        return FOREIGN


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    if args.wait < 0:
        print("conveyor ping: --wait must be >= 0", file=sys.stderr)
        return EXIT_USAGE
    address = args.addr or os.environ.get("CONVEYOR_ADDR") or DEFAULT_ADDR
    deadline = time.monotonic() + args.wait
    while True:
        # wait_for_ready lets one call ride out the server's start instead of a busy loop.
        state = _state(address, timeout=max(0.5, min(5.0, deadline - time.monotonic())))
        if state == SERVING:
            print(f"{address}: serving")
            return EXIT_OK
        if state == FOREIGN:
            # Waiting longer would not help: a `conveyor serve` meant for this address
            # could not listen on it (and said so).
            print(f"conveyor ping: {address} answers, but it is no Conveyor server: another "
                  "program has the port (choose others with CONVEYOR_LISTEN and "
                  "CONVEYOR_ADDR)", file=sys.stderr)
            return EXIT_FAILED
        if time.monotonic() >= deadline:
            print(f"conveyor ping: no server serving at {address} "
                  "(is `conveyor serve` running? is CONVEYOR_ADDR right?)", file=sys.stderr)
            return EXIT_FAILED
