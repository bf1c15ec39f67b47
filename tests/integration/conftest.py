"""Fixtures of the end-to-end suite: a cluster of real processes per test."""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator
from pathlib import Path

import pytest

from support.cluster import Cluster
from tests.services import require_postgres, require_rabbitmq


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture
def make_cluster(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Callable[..., Cluster]]:
    """``make_cluster(executors=2, env={...}, unconsumed=False)`` → a started Cluster,
    torn down after the test whatever happens; on failure the processes' output tails are
    printed."""
    postgres = require_postgres()
    amqp = require_rabbitmq()
    clusters: list[Cluster] = []

    def make(executors: int = 2, env: dict[str, str] | None = None,
             unconsumed: bool = False) -> Cluster:
        cluster = Cluster(tmp_path / f"cluster-{len(clusters)}", postgres, amqp,
                          executors=executors, env=env, unconsumed=unconsumed)
        clusters.append(cluster)
        cluster.start()
        return cluster

    try:
        yield make
    finally:
        failed = any(getattr(getattr(request.node, f"report_{when}", None), "failed", False)
                     for when in ("setup", "call"))
        for cluster in clusters:
            if failed:
                print(cluster.tails())
            cluster.close()
