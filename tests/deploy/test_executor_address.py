"""CONVEYOR_EXECUTOR_ADDR as the manifests set it (``dns:///name:port``) reaches executors."""

from __future__ import annotations

import socket
from concurrent import futures
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from rpc.client import connect
from runtime import Config, Runtime, executor_channel
from support.harness import Engine, issue_admin_token


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def test_a_dns_target_with_round_robin_reaches_the_executor(tmp_path: Path) -> None:
    # `localhost` resolves to 127.0.0.1 and ::1; round robin uses whichever answers, as a
    # headless Service name resolves to every executor pod.
    port = _free_port()
    config = Config.from_env(
        env={}, role="all", listen=f"127.0.0.1:{port}", executor_addr=f"dns:///localhost:{port}",
        database_url=f"sqlite:///{tmp_path / 'c.db'}", queue_url="memory://",
        workdir=tmp_path / "work", migrate_on_start=True)
    runtime = Runtime(config)
    try:
        runtime.start()
        with connect(runtime.address, issue_admin_token()) as client:
            result = Engine(runtime, client, tmp_path).run(
                "jobs:\n  a: {steps: [{run: 'echo via dns'}]}\n")
    finally:
        runtime.stop()
    assert result.status == "SUCCEEDED", result.build


def test_the_executor_channel_spreads_calls_over_every_resolved_address() -> None:
    # Two servers behind one name: `localhost` is 127.0.0.1 and ::1. Each answers the
    # health check for "who" differently, so the answers show which one served a call.
    port = _free_port()
    servers = []
    try:
        for host, status in (("127.0.0.1", health_pb2.HealthCheckResponse.SERVING),
                             ("[::1]", health_pb2.HealthCheckResponse.NOT_SERVING)):
            server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
            servicer = health.HealthServicer()
            servicer.set("who", status)
            health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
            try:
                server.add_insecure_port(f"{host}:{port}")
            except RuntimeError:
                pytest.skip(f"!!! SKIPPED: cannot listen on {host}:{port} (no IPv6 loopback?)")
            server.start()
            servers.append(server)
        channel = executor_channel(f"dns:///localhost:{port}", "token")
        try:
            stub = health_pb2_grpc.HealthStub(channel)
            seen = set()
            for _ in range(200):
                request = health_pb2.HealthCheckRequest(service="who")
                seen.add(stub.Check(request, timeout=5, wait_for_ready=True).status)
                if len(seen) == 2:
                    break
        finally:
            channel.close()
    finally:
        for server in servers:
            server.stop(None)
    assert len(seen) == 2, "every call went to one executor: round robin is not in effect"
