"""API flood bench: what an instance admin, a health check and a user get while idle
clients and open streams hold on (issue 11, "An API no one can starve").

A real server on 127.0.0.1 (SQLite, memory queue, no engine), the defaults `conveyor
serve` runs with. Each scenario starts a fresh server, opens its load — idle clients
(headers, never a request; half of them without a token) and WatchBuild streams of
viewers — then times one call of each kind. Bounded: every call has a 5 s timeout.
Also: WhoAmI calls per second (authentication on the accepting thread), and the CPU of
validating a ~1 MB workflow of expressions, first and again.

Prints figures, asserts nothing. Runs against older servers too (before the fix).

Usage: .venv/bin/python -m bench.api_flood [--calls 2000]

Measured on the 2-core CI machine (issue 11), before → after the lanes:
- 32 idle calls without a token; or 4 viewers x 8 streams: admin CancelBuild, admin
  WhoAmI, health Check, viewer WhoAmI all RESOURCE_EXHAUSTED → all OK (2-5 ms).
- 100 idle clients (50 without a token) + 64 streams: before, only 32 streams could even
  open and every call was RESOURCE_EXHAUSTED, still after 15 s; after, admin CancelBuild
  4.7 ms, health 1.8 ms, the viewer RESOURCE_EXHAUSTED (users' lane full: readiness
  says "calls: 32 of 32 in use; streams: 64 of 64 in use") and served again after
  10.2 s, when the idle calls' receive deadline ends them.
- WhoAmI without load: ~700 → ~780-1,000 calls/s (authentication on the accepting
  thread, the lookup in plain SQL).
- Validating a ~1 MB workflow of 17,000 expressions: 3.4 s CPU, and again on every
  StartPipelineBuild → 3.4 s once, then 0.00 s.
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

import store
from broker.memory import MemoryQueue
from conveyor.v1 import identity_pb2
from conveyor.v1 import pipeline_pb2 as pb
from observability.description import RuntimeInfo
from rpc import server as rpc_server
from rpc import tokens
from rpc.admin_service import AdminServicer
from rpc.auth import Authenticator
from rpc.executor_service import ExecutorServicer
from rpc.pipeline_service import PipelineServicer
from store.changes import ChangeFeed
from store.migrations import migrate

WORKFLOW = "jobs:\n  a: {steps: [{run: 'true'}]}\n"
TIMEOUT = 5.0
RUNTIME = RuntimeInfo(role="all", version="bench", uptime_seconds=1.0, builds_running=0,
                      jobs_running=0, queue_depth=0, executor_id="x", database="sqlite",
                      queue="memory", backend="local")


class Bench:
    def __init__(self, directory: Path) -> None:
        store.open_database(f"sqlite:///{directory / 'bench.db'}")
        migrate()
        self.tokens: dict[str, str] = {}
        self.root = self.user("root", admin=True)
        self.web = store.create_pipeline("web", WORKFLOW)
        self.viewers = [f"viewer{i}" for i in range(8)]
        for name in self.viewers:
            self.user(name)
            store.set_member(self.web.id, store.get_user(name).id, "viewer")
        self.watched, _ = store.create_build(self.web.id, workflow_yaml=WORKFLOW)

    def user(self, name: str, *, admin: bool = False) -> str:
        user = store.create_user(name, is_admin=admin)
        secret = tokens.new_token()
        store.create_token(user.id, "bench", tokens.token_hash(secret))
        self.tokens[name] = secret
        return secret


class Server:
    """A fresh server, and every channel opened against it (closed with it)."""

    def __init__(self) -> None:
        servicer = PipelineServicer(None, MemoryQueue(), ChangeFeed(),  # type: ignore[arg-type]
                                    poll_seconds=1.0)
        self.server, port = rpc_server.build_server(
            address="127.0.0.1:0", pipeline=servicer, executor=ExecutorServicer(store),
            admin=AdminServicer(lambda: [], lambda: RUNTIME),
            auth=Authenticator(store, tokens.new_token()),
        )
        self.server.start()
        self.address = f"127.0.0.1:{port}"
        self.channels: list[grpc.Channel] = []
        self.never = threading.Event()
        self.calls: list[Any] = []
        self.started = 0.0

    def channel(self, token: str | None) -> grpc.Channel:
        made = grpc.insecure_channel(self.address,
                                     options=[("grpc.use_local_subchannel_pool", 1)])
        self.channels.append(made)
        if token:
            from rpc.client import BearerToken

            return grpc.intercept_channel(made, BearerToken(token))
        return made

    def idle(self, method: str, token: str | None) -> None:
        def nothing() -> Iterator[bytes]:
            self.never.wait()
            return
            yield b""

        metadata = [("authorization", f"Bearer {token}")] if token else None
        call = self.channel(None).stream_unary(method)
        self.calls.append(call.future(nothing(), metadata=metadata, timeout=60))

    def watch(self, token: str, build_id: int) -> bool:
        from conveyor.v1 import pipeline_pb2_grpc

        stub = pipeline_pb2_grpc.PipelineServiceStub(self.channel(token))
        call = stub.WatchBuild(pb.WatchBuildRequest(build_id=build_id), timeout=60)
        self.calls.append(call)
        try:
            next(call)
            return True
        except grpc.RpcError:
            return False

    def settle(self) -> None:
        """Give the server the time to take in the idle calls (older servers cannot say)."""
        time.sleep(0.5)

    def close(self) -> None:
        self.never.set()
        for call in self.calls:
            call.cancel()
        for channel in self.channels:
            channel.close()
        rpc_server.stop_server(self.server, grace=0)


def _timed(call: Callable[[], object]) -> str:
    start = time.perf_counter()
    try:
        call()
        outcome = "OK"
    except grpc.RpcError as exc:
        outcome = exc.code().name
    return f"{outcome:<20} {(time.perf_counter() - start) * 1000:8.1f} ms"


def _probe(bench: Bench, server: Server) -> dict[str, str]:
    from conveyor.v1 import identity_pb2_grpc, pipeline_pb2_grpc

    admin = pipeline_pb2_grpc.PipelineServiceStub(server.channel(bench.root))
    admin_id = identity_pb2_grpc.IdentityServiceStub(server.channel(bench.root))
    viewer = identity_pb2_grpc.IdentityServiceStub(server.channel(bench.tokens["viewer7"]))
    health = health_pb2_grpc.HealthStub(server.channel(None))
    target, _ = store.create_build(bench.web.id, workflow_yaml=WORKFLOW)
    results = {
        "admin CancelBuild": _timed(lambda: admin.CancelBuild(
            pb.CancelBuildRequest(build_id=target.id), timeout=TIMEOUT)),
        "admin WhoAmI": _timed(lambda: admin_id.WhoAmI(identity_pb2.WhoAmIRequest(),
                                                        timeout=TIMEOUT)),
        "health Check": _timed(lambda: health.Check(health_pb2.HealthCheckRequest(),
                                                    timeout=TIMEOUT)),
        "viewer WhoAmI": _timed(lambda: viewer.WhoAmI(identity_pb2.WhoAmIRequest(),
                                                      timeout=TIMEOUT)),
    }
    saturation = getattr(rpc_server, "saturation", None)
    results["readiness (load)"] = (saturation(server.server) or "ok") if saturation else (
        "not reported")
    return results


def _until_served(bench: Bench, server: Server, bound_s: float = 15.0) -> str:
    """How long after the idle calls began a viewer's WhoAmI is answered again."""
    from conveyor.v1 import identity_pb2_grpc

    viewer = identity_pb2_grpc.IdentityServiceStub(server.channel(bench.tokens["viewer7"]))
    start = server.started
    while time.perf_counter() - start < bound_s:
        try:
            viewer.WhoAmI(identity_pb2.WhoAmIRequest(), timeout=TIMEOUT)
            return f"after {time.perf_counter() - start:.1f} s (the idle calls' slots freed)"
        except grpc.RpcError:
            time.sleep(0.25)
    return f"not within {bound_s:g} s"


def _scenario(bench: Bench, anonymous: int, signed: int, viewers: int,
              per_viewer: int) -> tuple[dict[str, str], str]:
    server = Server()
    try:
        opened = sum(server.watch(bench.tokens[bench.viewers[i]], bench.watched.id)
                     for i in range(viewers) for _ in range(per_viewer))
        server.started = time.perf_counter()
        for _ in range(anonymous):
            server.idle("/conveyor.v1.PipelineService/CancelBuild", None)
        for i in range(signed):
            server.idle("/conveyor.v1.IdentityService/WhoAmI",
                        bench.tokens[bench.viewers[i % 5]])
        server.settle()
        load = (f"{anonymous} idle without a token, {signed} idle signed, "
                f"{opened}/{viewers * per_viewer} streams open")
        results = _probe(bench, server)
        if signed:
            results["viewer served again"] = _until_served(bench, server)
        return results, load
    finally:
        server.close()


def _throughput(bench: Bench, calls: int) -> float:
    server = Server()
    try:
        from conveyor.v1 import identity_pb2_grpc

        stub = identity_pb2_grpc.IdentityServiceStub(server.channel(bench.tokens["viewer0"]))
        stub.WhoAmI(identity_pb2.WhoAmIRequest(), timeout=TIMEOUT)
        start = time.perf_counter()
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda _: stub.WhoAmI(identity_pb2.WhoAmIRequest(), timeout=TIMEOUT),
                          range(calls)))
        return calls / (time.perf_counter() - start)
    finally:
        server.close()


def _validation() -> list[str]:
    expr = ("${{ format('{0}-{1}', github.sha, inputs.x) }} "
            "${{ contains(github.ref, 'main') && 'a' || 'b' }}")
    lines = ["jobs:"]
    for j in range(85):
        lines.append(f"  j{j}:\n    runs-on: x\n    steps:")
        lines.extend(f"      - run: echo {expr} {j}-{s}" for s in range(100))
    text = "\n".join(lines) + "\n"
    out = [f"workflow of {len(text):,} bytes ({85 * 100 * 2:,} expressions)"]
    import workflow

    # What StartPipelineBuild validates with: the servicer's plans, or (an older server)
    # workflow.load every time.
    servicer = PipelineServicer(None, MemoryQueue(), ChangeFeed())  # type: ignore[arg-type]
    plans = getattr(servicer, "plans", None)
    load: Callable[[str], object] = plans.load if plans is not None else workflow.load
    for what in ("first validation", "again (every StartPipelineBuild)"):
        cpu = time.process_time()
        load(text)
        out.append(f"{what:<34} {time.process_time() - cpu:6.2f} s CPU")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="conveyor-flood-") as directory:
        bench = Bench(Path(directory))
        scenarios = [
            ("32 idle calls without a token", (32, 0, 0, 0)),
            ("4 viewers x 8 streams", (0, 0, 4, 8)),
            ("100 idle clients + 64 streams", (50, 50, 8, 8)),
        ]
        for title, load in scenarios:
            results, described = _scenario(bench, *load)
            print(f"== {title}: {described}")
            for name, outcome in results.items():
                print(f"   {name:<18} {outcome}")
        print(f"== WhoAmI, 8 threads, no load: {_throughput(bench, args.calls):,.0f} calls/s")
        store.close_database()
    print("== validation")
    for line in _validation():
        print(f"   {line}")


if __name__ == "__main__":
    main()
