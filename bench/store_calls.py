"""Store micro-benchmark: µs per call of the engine's hot store calls, per backend.

Prints figures, asserts nothing. Each call runs on its own fresh rows where it changes
state (so a guard never turns it into a no-op), in one thread, after a warm-up.
PostgreSQL gets a database of its own (created and dropped here).

Usage: .venv/bin/python -m bench.store_calls [--n 300] [--backend sqlite|postgresql|both]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg2  # type: ignore[import-untyped]

import store
from store.db import database, store_call
from store.records import JobInit, LogChunkInit, StepUpdate
from support.services import POSTGRES_URL
from workflow.states import BuildStatus, JobStatus, StepStatus

YAML = "jobs:\n  a: {steps: [{run: 'true'}]}\n"
STEPS = [(0, "Set up job"), (1, "Run true"), (2, "Complete job")]


def _timed(
    n: int, prepare: Callable[[int], Any], call: Callable[[Any], object]
) -> tuple[float, float]:
    """(wall, this process's CPU) µs per call of ``call(prepare(i))``; preparation is
    outside the timing. CPU is what a busy executor pays; wall adds the server's work."""
    args = [prepare(i) for i in range(n)]
    start, cpu = time.perf_counter(), time.process_time()
    for arg in args:
        call(arg)
    return (time.perf_counter() - start) / n * 1e6, (time.process_time() - cpu) / n * 1e6


def _builds(pipeline_id: int, n: int, jobs: int = 1) -> list[tuple[int, list[int]]]:
    out = []
    for _ in range(n):
        build, _created = store.create_build(pipeline_id, workflow_yaml=YAML)
        inits = [JobInit(f"j{k}", f"j{k}", f"j{k}") for k in range(jobs)]
        rows = store.create_jobs(build.id, inits)
        out.append((build.id, [row.id for row in rows]))
    return out


def run(url: str, n: int) -> dict[str, tuple[float, float]]:
    """µs per call of each hot store call on the database at ``url``."""
    db = store.open_database(url)
    store.migrate(db)
    pipe = store.create_pipeline(f"bench-{time.time_ns()}", YAML)
    owner = "bench"
    results: dict[str, tuple[float, float]] = {}

    def measure(name: str, prepare: Callable[[int], Any], call: Callable[[Any], object]) -> None:
        _timed(min(20, n), prepare, call)  # warm-up: pool, statement caches
        results[name] = _timed(n, prepare, call)

    fixed = _builds(pipe.id, 1, jobs=5)[0]
    store.claim_build(fixed[0], owner, 60)
    store.start_job(fixed[1][0], STEPS)
    store.append_log_chunks([LogChunkInit(fixed[1][0], 1, ("hello",) * 20)])

    measure("store_call overhead (empty fn)", lambda i: i, lambda _: _noop())
    measure("get_pipeline", lambda i: pipe.id, lambda p: store.get_pipeline(p))
    measure("create_build", lambda i: pipe.id,
            lambda p: store.create_build(p, workflow_yaml=YAML))
    measure("mark_published", lambda i: fixed[0], lambda b: store.mark_published(b))
    measure("get_build", lambda i: fixed[0], lambda b: store.get_build(b))
    measure("get_snapshot", lambda i: fixed[0], lambda b: store.get_snapshot(b))
    measure("list_jobs (5)", lambda i: fixed[0], lambda b: store.list_jobs(b))
    measure("list_steps (1 job, 3 steps)", lambda i: [fixed[1][0]],
            lambda j: store.list_steps(j))
    measure("renew_leases", lambda i: [fixed[0]],
            lambda b: store.renew_leases(owner, b, 60))
    measure("log_line_count", lambda i: fixed[1][0], lambda j: store.log_line_count(j))

    fresh = _builds(pipe.id, 3 * (n + 20), jobs=1)
    it = iter(fresh)
    measure("claim_build", lambda i: next(it)[0], lambda b: store.claim_build(b, owner, 60))
    claimed = fresh[: n + 20]
    it = iter(claimed)
    measure("create_jobs (5)", lambda i: next(it)[0], lambda b: store.create_jobs(
        b, [JobInit(f"x{k}", f"x{k}", f"x{k}") for k in range(5)]))
    it = iter(fresh[n + 20 :])
    measure("queue_jobs (1)", lambda i: next(it)[1], lambda j: store.queue_jobs(j, "cap"))
    it = iter(claimed)
    measure("start_job (3 steps)", lambda i: next(it)[1][0], lambda j: store.start_job(j, STEPS))
    it = iter(claimed)
    two = [StepUpdate(0, "Set up job", StepStatus.SUCCEEDED),
           StepUpdate(1, "Run true", StepStatus.RUNNING)]
    measure("record_steps (2)", lambda i: next(it)[1][0], lambda j: store.record_steps(j, two))
    it = iter(claimed)
    measure("append_log_chunks (1x20 lines)", lambda i: next(it)[1][0],
            lambda j: store.append_log_chunks([LogChunkInit(j, 1, ("line",) * 20)]))
    it = iter(claimed)
    measure("finish_job", lambda i: next(it)[1][0], lambda j: store.finish_job(
        j, status=JobStatus.SUCCEEDED, reason="", exit_code=0, outputs={}))
    it = iter(claimed)
    measure("finish_build", lambda i: next(it)[0],
            lambda b: store.finish_build(b, BuildStatus.SUCCEEDED, "ok"))
    store.close_database()
    return results


@store_call
def _noop() -> None:
    database.obj  # noqa: B018 (the call's own overhead is what is measured)


def _postgres(n: int) -> dict[str, tuple[float, float]]:
    name = f"conveyor_bench_{os.getpid()}"
    admin = psycopg2.connect(POSTGRES_URL)
    admin.autocommit = True
    try:
        with admin.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS {name}")
            cur.execute(f"CREATE DATABASE {name}")
        try:
            return run(urlunsplit(urlsplit(POSTGRES_URL)._replace(path=f"/{name}")), n)
        finally:
            store.close_database()
            with admin.cursor() as cur:
                cur.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    finally:
        admin.close()


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=300)
    p.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    args = p.parse_args()
    tables: dict[str, dict[str, tuple[float, float]]] = {}
    if args.backend in ("sqlite", "both"):
        with tempfile.TemporaryDirectory() as tmp:
            tables["sqlite"] = run(f"sqlite:///{tmp}/bench.db", args.n)
    if args.backend in ("postgresql", "both"):
        tables["postgresql"] = _postgres(args.n)
    names = list(next(iter(tables.values())))
    print(f"{'µs per call (wall / client CPU)':34}" + "".join(f"{b:>16}" for b in tables))
    for name in names:
        cells = "".join(f"{tables[b][name][0]:9.0f} /{tables[b][name][1]:5.0f}" for b in tables)
        print(f"{name:34}{cells}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
