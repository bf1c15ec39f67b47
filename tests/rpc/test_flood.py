"""Nobody can starve the API: idle calls, calls without a token and held streams leave
health checks and instance admins served (issue 11, "An API no one can starve").

A bounded loopback load: 100 idle clients (half without a token) and 64 open streams.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

import store
from broker.memory import MemoryQueue
from conveyor.v1 import common_pb2, identity_pb2
from conveyor.v1 import pipeline_pb2 as pb
from rpc import server as rpc_server
from rpc import tokens
from rpc.admission import Admission, Lane, Limits
from rpc.auth import Authenticator
from rpc.client import connect
from rpc.executor_service import ExecutorServicer
from rpc.pipeline_service import PipelineServicer
from store.changes import ChangeFeed
from tests.rpc.conftest import WORKFLOW
from tests.rpc.helpers import call_error

CANCEL = "/conveyor.v1.PipelineService/CancelBuild"
WHOAMI = "/conveyor.v1.IdentityService/WhoAmI"


@dataclass
class Flood:
    address: str
    server: grpc.Server
    tokens: dict[str, str] = field(default_factory=dict)
    channels: list[grpc.Channel] = field(default_factory=list)
    never: threading.Event = field(default_factory=threading.Event)

    def user(self, name: str, *, admin: bool = False) -> str:
        user = store.create_user(name, is_admin=admin)
        secret = tokens.new_token()
        store.create_token(user.id, "t", tokens.token_hash(secret))
        self.tokens[name] = secret
        return secret

    def channel(self) -> grpc.Channel:
        # Its own connection, like a separate client.
        made = grpc.insecure_channel(self.address, options=[("grpc.use_local_subchannel_pool", 1)])
        self.channels.append(made)
        return made

    def idle(self, method: str, token: str | None) -> grpc.Future:
        """A call that sends its headers and never its request."""
        def nothing() -> Iterator[bytes]:
            self.never.wait()
            return
            yield b""

        metadata = [("authorization", f"Bearer {token}")] if token else None
        call = self.channel().stream_unary(method)
        return call.future(nothing(), metadata=metadata, timeout=60)  # type: ignore[no-any-return]

    @property
    def admission(self) -> Admission:
        found = rpc_server.admission_of(self.server)
        assert found is not None
        return found


def _serve(limits: Limits | None) -> Iterator[Flood]:
    auth = Authenticator(store, tokens.new_token())
    servicer = PipelineServicer(
        None, MemoryQueue(), ChangeFeed(), poll_seconds=1.0,  # type: ignore[arg-type]
    )
    server, port = rpc_server.build_server(
        address="127.0.0.1:0", pipeline=servicer, executor=ExecutorServicer(store), admin=None,
        auth=auth, limits=limits,
    )
    server.start()
    flood = Flood(f"127.0.0.1:{port}", server)
    try:
        yield flood
    finally:
        flood.never.set()
        for channel in flood.channels:
            channel.close()
        rpc_server.stop_server(server, grace=0)


@pytest.fixture
def flood(database: None) -> Iterator[Flood]:
    yield from _serve(None)  # the defaults a server runs with


@pytest.fixture
def quick(database: None) -> Iterator[Flood]:
    yield from _serve(Limits(calls=4, calls_per_user=2, receive_timeout_s=0.3))


def _finished(calls: list[grpc.Future], count: int) -> dict[grpc.StatusCode, int]:
    """Wait until ``count`` of ``calls`` have finished; their status codes, counted."""
    done = threading.Condition()
    finished: list[grpc.Future] = []

    def on_done(call: grpc.Future) -> None:
        with done:
            finished.append(call)
            done.notify_all()

    for call in calls:
        call.add_done_callback(on_done)
    with done:
        assert done.wait_for(lambda: len(finished) >= count, timeout=10)
        codes: dict[grpc.StatusCode, int] = {}
        for call in finished:
            codes[call.code()] = codes.get(call.code(), 0) + 1
        return codes


def _health(flood: Flood) -> int:
    stub = health_pb2_grpc.HealthStub(flood.channel())
    return stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=10).status


def test_idle_and_streaming_clients_leave_health_and_admins_served(flood: Flood) -> None:
    root = flood.user("root", admin=True)
    viewers = [f"viewer{i}" for i in range(8)]
    web = store.create_pipeline("web", WORKFLOW)
    for name in viewers:
        flood.user(name)
        store.set_member(web.id, store.get_user(name).id, "viewer")
    build, _ = store.create_build(web.id, workflow_yaml=WORKFLOW)  # stays QUEUED: no engine

    # 64 streams: 8 viewers following the build 8 times each.
    streams = []
    for name in viewers:
        client = connect(flood.address, flood.tokens[name])
        flood.channels.append(client.channel)
        for _ in range(8):
            call = client.pipelines.WatchBuild(pb.WatchBuildRequest(build_id=build.id),
                                               timeout=60)
            assert next(call).build.id == build.id  # open on the server now
            streams.append(call)
    # 100 idle clients: 50 without a token, 50 with a viewer's token.
    anonymous = [flood.idle(CANCEL, None) for _ in range(50)]
    signed = [flood.idle(WHOAMI, flood.tokens[viewers[i % 5]]) for i in range(50)]

    # Without a token: refused at once, without waiting for a request that never comes.
    for call in anonymous:
        assert call.exception(timeout=10).code() == grpc.StatusCode.UNAUTHENTICATED
    # With one: 32 hold the users' call lane (until their receive deadline), 18 are
    # refused at once.
    assert flood.admission.wait_until(Lane.CALLS, 32, timeout=10)
    assert _finished(signed, 18) == {grpc.StatusCode.RESOURCE_EXHAUSTED: 18}
    assert flood.admission.in_use()[Lane.STREAMS] == (64, 64)

    # Users are told why they are refused; readiness says the server is saturated.
    viewer = connect(flood.address, flood.tokens[viewers[0]])
    flood.channels.append(viewer.channel)
    error = call_error(lambda: viewer.identity.WhoAmI(
        identity_pb2.WhoAmIRequest(), timeout=10))
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "32 calls in progress, its limit is 32" in error.details()
    error = call_error(lambda: next(viewer.pipelines.WatchBuild(
        pb.WatchBuildRequest(build_id=build.id), timeout=10)))
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "already has 8 streams open, the limit is 8" in error.details()
    saturation = rpc_server.saturation(flood.server)
    assert saturation == "calls: 32 of 32 in use; streams: 64 of 64 in use"
    # The instance admin is served: their CancelBuild is answered.
    admin = connect(flood.address, root)
    flood.channels.append(admin.channel)
    cancelled = admin.pipelines.CancelBuild(pb.CancelBuildRequest(build_id=build.id),
                                            timeout=10).build
    assert cancelled.status == common_pb2.BUILD_STATUS_CANCELLED
    assert admin.identity.WhoAmI(identity_pb2.WhoAmIRequest(), timeout=10).user.name == "root"
    # Health checks are served.
    assert _health(flood) == health_pb2.HealthCheckResponse.SERVING
    # The build is over: its watchers' streams end, and their slots are free again.
    assert flood.admission.wait_until(Lane.STREAMS, 0, timeout=10)


def test_calls_without_a_valid_token_never_take_a_slot(quick: Flood) -> None:
    quick.user("alice")
    calls = [quick.idle(WHOAMI, None) for _ in range(20)]
    calls += [quick.idle(WHOAMI, tokens.new_token()) for _ in range(20)]
    # Twice the users' lane and more, all refused without waiting for their requests.
    assert _finished(calls, 40) == {grpc.StatusCode.UNAUTHENTICATED: 40}
    assert quick.admission.in_use()[Lane.CALLS] == (0, 4)
    with connect(quick.address, quick.tokens["alice"]) as alice:
        assert alice.identity.WhoAmI(identity_pb2.WhoAmIRequest(), timeout=10).user.name == "alice"


def test_an_idle_call_gives_its_slot_back_after_the_receive_timeout(quick: Flood) -> None:
    bob = quick.user("bob")
    first, second = quick.idle(WHOAMI, bob), quick.idle(WHOAMI, bob)
    assert quick.admission.wait_until(Lane.CALLS, 2, timeout=10)
    # A third call of bob's is refused: two is his share of the lane.
    with connect(quick.address, bob) as client:
        error = call_error(lambda: client.identity.WhoAmI(
            identity_pb2.WhoAmIRequest(), timeout=10))
        assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "user 'bob' already has 2 calls in progress, the limit is 2" in error.details()
        for call in (first, second):
            error = call.exception(timeout=10)
            assert error.code() == grpc.StatusCode.DEADLINE_EXCEEDED
            assert "no request message came within 0.3s" in error.details()
        assert quick.admission.wait_until(Lane.CALLS, 0, timeout=10)
        assert client.identity.WhoAmI(identity_pb2.WhoAmIRequest(), timeout=10).user.name == "bob"


def test_a_call_that_closes_without_a_request_is_answered_as_grpc_does(quick: Flood) -> None:
    bob = quick.user("bob")
    call = quick.channel().stream_unary(WHOAMI)
    error = call_error(lambda: call(
        iter(()), metadata=[("authorization", f"Bearer {bob}")], timeout=10))
    assert error.code() == grpc.StatusCode.UNIMPLEMENTED
    assert "takes exactly one request message" in error.details()
    assert quick.admission.wait_until(Lane.CALLS, 0, timeout=10)
