"""/readyz says so when the gRPC server is saturated (issue 11: an API no one can starve)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import grpc

import store
from broker.memory import MemoryQueue
from observability.probes import RuntimeProbes
from rpc import server as rpc_server
from rpc import tokens
from rpc.admin_service import AdminServicer
from rpc.admission import Lane, Limits
from rpc.auth import Authenticator
from rpc.pipeline_service import PipelineServicer
from store.changes import ChangeFeed
from store.migrations import migrate
from tests.rpc.conftest import RUNTIME


def test_readiness_fails_while_the_users_lane_is_full(tmp_path: Path) -> None:
    db = store.open_database("sqlite:///" + str(tmp_path / "conveyor.db"))
    migrate(db)
    user = store.create_user("bob")
    secret = tokens.new_token()
    store.create_token(user.id, "t", tokens.token_hash(secret))
    server, port = rpc_server.build_server(
        address="127.0.0.1:0",
        pipeline=PipelineServicer(None, MemoryQueue(), ChangeFeed()),  # type: ignore[arg-type]
        executor=None, admin=AdminServicer(lambda: [], lambda: RUNTIME),
        auth=Authenticator(store, tokens.new_token()),
        limits=Limits(calls=1, calls_per_user=1, receive_timeout_s=60),
    )
    server.start()
    never = threading.Event()
    runtime = SimpleNamespace(
        config=SimpleNamespace(runs_executor=False), supervisor=None, fatal=threading.Event(),
        fatal_reason="", stopping=threading.Event(), server=server, port=port,
        queue=SimpleNamespace(depth=lambda: 0), saturation=lambda: rpc_server.saturation(server))

    def nothing() -> Iterator[bytes]:
        never.wait()
        return
        yield b""

    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    try:
        assert RuntimeProbes(runtime).ready().ok
        # bob's call never sends its request: until its receive deadline it holds the
        # users' one slot.
        idle = channel.stream_unary("/conveyor.v1.IdentityService/WhoAmI")
        future = idle.future(nothing(), metadata=[("authorization", f"Bearer {secret}")],
                             timeout=60)
        admission = rpc_server.admission_of(server)
        assert admission is not None and admission.wait_until(Lane.CALLS, 1, timeout=10)
        result = RuntimeProbes(runtime).ready()
        assert not result.ok and result.reasons == {"load": "calls: 1 of 1 in use"}
        future.cancel()
        assert admission.wait_until(Lane.CALLS, 0, timeout=10)
        assert RuntimeProbes(runtime).ready().ok
    finally:
        never.set()
        channel.close()
        rpc_server.stop_server(server, grace=0)
        store.close_database()
