"""A real gRPC stack on 127.0.0.1:0: executor server + pipeline server, SQLite, memory queue."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest

import store
from broker.memory import MemoryQueue
from conveyor.v1 import executor_pb2_grpc
from observability.description import ActorDescription, RuntimeInfo
from rpc import tokens
from rpc.admin_service import AdminServicer
from rpc.auth import Authenticator
from rpc.client import BearerToken, Client, connect
from rpc.executor_service import ExecutorServicer
from rpc.pipeline_service import PipelineServicer
from rpc.server import build_server, stop_server
from store.changes import ChangeFeed
from store.migrations import migrate

WORKFLOW = """\
name: demo
on:
  workflow_dispatch:
    inputs:
      target:
        type: choice
        options: [staging, prod]
        default: staging
jobs:
  build:
    runs-on: ubuntu-latest
    steps:
      - run: echo build
  test:
    needs: build
    runs-on: ubuntu-latest
    steps:
      - run: echo test
"""

ACTORS = [
    ActorDescription(kind="QueueActor", key="queue", state="consuming", age_seconds=3.5),
    ActorDescription(
        kind="BuildActor", key="build/7", state="RUNNING", age_seconds=1.0,
        counters={"jobs_started": 2}, build_id=7,
    ),
]
RUNTIME = RuntimeInfo(
    role="all", version="0.1.0", uptime_seconds=12.5, builds_running=1, jobs_running=2,
    queue_depth=0, executor_id="exec-1", database="sqlite", queue="memory", backend="local",
)


@dataclass
class Stack:
    client: Client
    queue: MemoryQueue
    feed: ChangeFeed
    pipeline_server: grpc.Server
    executor_server: grpc.Server
    pipeline_port: int
    executor_port: int
    admin_token: str = ""


@pytest.fixture
def database(tmp_path: Path) -> Iterator[None]:
    db = store.open_database("sqlite:///" + str(tmp_path / "conveyor.db"))
    migrate(db)
    yield
    store.close_database()


INTERNAL_TOKEN = tokens.new_token()


@pytest.fixture
def stack(database: None) -> Iterator[Stack]:
    queue = MemoryQueue()
    feed = ChangeFeed()
    auth = Authenticator(store, INTERNAL_TOKEN)
    admin_token = tokens.new_token()  # the client is an instance admin: auth is tests/api's
    store.bootstrap_admin("admin", tokens.token_hash(admin_token))
    executor_server, executor_port = build_server(
        address="127.0.0.1:0",
        pipeline=None,
        executor=ExecutorServicer(store),
        admin=AdminServicer(lambda: list(ACTORS), lambda: RUNTIME),
        auth=auth,
        max_workers=8,
    )
    executor_server.start()
    executor_channel = grpc.intercept_channel(
        grpc.insecure_channel(f"127.0.0.1:{executor_port}"), BearerToken(INTERNAL_TOKEN)
    )
    pipeline_server, pipeline_port = build_server(
        address="127.0.0.1:0",
        pipeline=PipelineServicer(
            executor_pb2_grpc.ExecutorServiceStub(executor_channel), queue, feed,
            poll_seconds=0.05,
        ),
        executor=None,
        admin=None,
        auth=auth,
        max_workers=8,
    )
    pipeline_server.start()
    client = connect(f"127.0.0.1:{pipeline_port}", admin_token)
    try:
        yield Stack(
            client, queue, feed, pipeline_server, executor_server, pipeline_port, executor_port,
            admin_token,
        )
    finally:
        client.close()
        stop_server(pipeline_server, grace=0)
        executor_channel.close()
        stop_server(executor_server, grace=0)
        queue.close()
