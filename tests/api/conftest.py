"""The whole API on one real server (127.0.0.1:0) with auth, SQLite and the memory queue.

No engine runs here: builds stay QUEUED unless a test moves them through the store, so
every answer is deterministic. `tests/api/test_retry_engine.py` uses the real engine.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import grpc
import pytest

import store
from broker.memory import MemoryQueue
from conveyor.v1 import executor_pb2_grpc
from observability.description import RuntimeInfo
from rpc import tokens
from rpc.admin_service import AdminServicer
from rpc.auth import Authenticator
from rpc.client import BearerToken, Client, connect
from rpc.executor_service import ExecutorServicer
from rpc.pipeline_service import PipelineServicer
from rpc.server import build_server, stop_server
from store.changes import ChangeFeed
from store.migrations import migrate
from store.records import JobInit
from workflow.states import BuildStatus, JobStatus

WORKFLOW = """\
on:
  workflow_dispatch:
    inputs:
      target:
        type: choice
        options: [staging, prod]
        default: staging
jobs:
  build:
    steps:
      - run: echo build
  test:
    needs: build
    steps:
      - run: echo test
"""

RUNTIME = RuntimeInfo(role="all", version="0.1.0", uptime_seconds=1.0, builds_running=0,
                      jobs_running=0, queue_depth=0, executor_id="x", database="sqlite",
                      queue="memory", backend="local")
MAX_QUEUED = 5
MAX_STREAMS = 3


@dataclass
class Api:
    address: str
    internal_token: str
    queue: MemoryQueue
    feed: ChangeFeed
    servicer: PipelineServicer
    tokens: dict[str, str] = field(default_factory=dict)  # identity -> bearer token
    clients: list[Client] = field(default_factory=list)

    def client(self, who: str | None) -> Client:
        """A client sending ``who``'s token (None: no token at all)."""
        made = connect(self.address, self.tokens[who] if who else None)
        self.clients.append(made)
        return made

    def user(self, name: str, *, admin: bool = False) -> str:
        """A new user with a fresh token; returns the token."""
        user = store.create_user(name, is_admin=admin)
        secret = tokens.new_token()
        store.create_token(user.id, "test", tokens.token_hash(secret))
        self.tokens[name] = secret
        return secret


def pipeline(name: str, owner: str, members: dict[str, str] | None = None,
             yaml: str = WORKFLOW) -> int:
    """A pipeline whose admin is ``owner``, with more ``members`` (user -> role)."""
    owner_id = store.get_user(owner).id
    record = store.create_pipeline(name, yaml, admin_id=owner_id)
    for user, role in (members or {}).items():
        store.set_member(record.id, store.get_user(user).id, role)
    return record.id


def finished_build(pipeline_id: int, status: BuildStatus = BuildStatus.FAILED,
                   triggered_by: str = "alice") -> int:
    """A build that ran `build` (FAILED unless the build SUCCEEDED) and skipped `test`."""
    build, _ = store.create_build(pipeline_id, workflow_yaml=WORKFLOW, triggered_by=triggered_by)
    store.claim_build(build.id, "test-executor", 30)
    first, second = store.create_jobs(build.id, [
        JobInit(key="build", job_id="build", name="build"),
        JobInit(key="test", job_id="test", name="test", needs=("build",)),
    ])
    ok = status == BuildStatus.SUCCEEDED
    store.update_job(first.id, status=JobStatus.RUNNING)
    store.update_job(first.id, status=JobStatus.SUCCEEDED if ok else JobStatus.FAILED,
                     exit_code=0 if ok else 1, reason="" if ok else "exit code 1")
    if ok:
        store.update_job(second.id, status=JobStatus.RUNNING)
        store.update_job(second.id, status=JobStatus.SUCCEEDED, exit_code=0)
    else:
        store.update_job(second.id, status=JobStatus.SKIPPED, reason="needs 'build' failed")
    store.finish_build(build.id, status, "done")
    return build.id


def row_counts() -> dict[str, int]:
    """Rows per table: a failed request must leave every count unchanged."""
    from store.models import ALL_MODELS

    with store.database.connection_context():
        return {m._meta.table_name: m.select().count() for m in ALL_MODELS}


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    db = store.open_database("sqlite:///" + str(tmp_path / "conveyor.db"))
    migrate(db)
    queue, feed = MemoryQueue(), ChangeFeed()
    internal = tokens.new_token()

    class _Late:
        stub: executor_pb2_grpc.ExecutorServiceStub | None = None

        def CreateBuild(self, *args: object, **kwargs: object) -> object:
            assert self.stub is not None
            return self.stub.CreateBuild(*args, **kwargs)

    late = _Late()
    servicer = PipelineServicer(late, queue, feed, poll_seconds=0.05,  # type: ignore[arg-type]
                                max_queued_per_pipeline=MAX_QUEUED,
                                max_streams_per_user=MAX_STREAMS)
    server, port = build_server(
        address="127.0.0.1:0", pipeline=servicer,
        executor=ExecutorServicer(store, max_queued_per_pipeline=MAX_QUEUED),
        admin=AdminServicer(lambda: [], lambda: RUNTIME),
        auth=Authenticator(store, internal), max_workers=16,
    )
    server.start()
    channel = grpc.intercept_channel(grpc.insecure_channel(f"127.0.0.1:{port}"),
                                     BearerToken(internal))
    late.stub = executor_pb2_grpc.ExecutorServiceStub(channel)
    made = Api(f"127.0.0.1:{port}", internal, queue, feed, servicer)
    try:
        made.user("root", admin=True)
        for name in ("alice", "dev", "viewer", "outsider"):
            made.user(name)
        made.tokens["bad"] = tokens.new_token()
        expired, revoked = store.create_user("expired"), store.create_user("revoked")
        for user, what in ((expired, "expired"), (revoked, "revoked")):
            secret = tokens.new_token()
            expires = store.utcnow() - timedelta(seconds=1) if what == "expired" else None
            token = store.create_token(user.id, what, tokens.token_hash(secret),
                                       expires_at=expires)
            if what == "revoked":
                store.revoke_token(token.id)
            made.tokens[what] = secret
        yield made
    finally:
        for client in made.clients:
            client.close()
        channel.close()
        stop_server(server, grace=0)
        queue.close()
        store.close_database()
