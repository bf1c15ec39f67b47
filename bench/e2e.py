"""End-to-end figures: builds through gRPC, PostgreSQL, RabbitMQ and two executor processes.

    .venv/bin/python -m bench.e2e [--builds 1000] [--paced 250] [--rate 50] [--log-lines 1000000]

Starts one ``serve --role pipeline`` and two ``serve --role executor`` processes (the
end-to-end test harness, ``support/cluster.py``) on a scratch database and
scratch queues, all removed afterwards. Prints, asserts nothing:

- raw rates on this machine, so that ratios mean something: a bare gRPC unary call
  (health Check of the pipeline process), a bare confirmed publish (pika), a bare
  PostgreSQL insert (one row per transaction);
- StartPipelineBuild latency p50/p99 at ``--rate`` builds/s offered (paced, open loop);
- ``--builds`` small builds (three ``true`` jobs each) unpaced from ``--clients``
  threads: builds/s accepted and builds/s completed;
- log ingest: one job printing ``--log-lines`` lines through the whole system into
  PostgreSQL (lines/s), against raw COPY of the same lines (one row per line, and in the
  engine's own chunk format).

Targets (issue 4): p99 ≤ 50 ms at 50 builds/s offered; ≥ 100 builds/s accepted; log
ingest ≥ 50% of raw COPY.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pika
import psycopg2  # type: ignore[import-untyped]
from grpc_health.v1 import health_pb2, health_pb2_grpc

from conveyor.v1 import pipeline_pb2
from support.cluster import TERMINAL, Cluster, ClusterError
from support.services import AMQP_URL, POSTGRES_URL

SMALL = """jobs:
  a: {steps: [{run: 'true'}]}
  b: {steps: [{run: 'true'}]}
  c: {steps: [{run: 'true'}]}
"""
LINE = "line {} of the build log: compiling module, linking objects, running checks ....."


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _timed(calls: int, call: Callable[[], Any]) -> float:
    began = time.perf_counter()
    for _ in range(calls):
        call()
    return calls / (time.perf_counter() - began)


# -- raw baselines -----------------------------------------------------------------------
def raw_grpc(address: str, calls: int) -> tuple[float, float]:
    """Health Check calls/s and p99 latency (ms), one thread."""
    import grpc

    with grpc.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        request = health_pb2.HealthCheckRequest()
        stub.Check(request, timeout=5)
        latencies = []
        began = time.perf_counter()
        for _ in range(calls):
            t = time.perf_counter()
            stub.Check(request, timeout=5)
            latencies.append(time.perf_counter() - t)
        rate = calls / (time.perf_counter() - began)
    return rate, _percentile(latencies, 0.99) * 1000


def raw_publish(url: str, calls: int) -> float:
    """Confirmed persistent publishes/s to a scratch quorum queue, one connection."""
    queue = f"bench-raw-{uuid.uuid4().hex[:8]}"
    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        channel = connection.channel()
        channel.queue_declare(queue, durable=True, arguments={"x-queue-type": "quorum"})
        channel.confirm_delivery()
        props = pika.BasicProperties(delivery_mode=2)
        body = b"\x08\x01\x10\x01"
        rate = _timed(calls, lambda: channel.basic_publish("", queue, body, props,
                                                           mandatory=True))
        channel.queue_delete(queue)
        return rate
    finally:
        connection.close()


def raw_insert(database_url: str, calls: int) -> float:
    """Single-row INSERT transactions/s (autocommit: one commit per row)."""
    conn = psycopg2.connect(database_url)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute("CREATE TEMP TABLE bench_raw (id serial primary key, v text)")
            return _timed(calls, lambda: cur.execute(
                "INSERT INTO bench_raw (v) VALUES (%s)", ("x" * 40,)))
    finally:
        conn.close()


def raw_copy(database_url: str, lines: int, chunk: int) -> tuple[float, float]:
    """COPY of the log's lines (lines/s): one row per line, and ``chunk`` lines per row."""
    text = [LINE.format(n) for n in range(1, lines + 1)]
    conn = psycopg2.connect(database_url)
    try:
        with conn.cursor() as cur:
            cur.execute("CREATE TEMP TABLE per_line (job_id int, line int, content text)")
            cur.execute("CREATE TEMP TABLE chunked (job_id int, first_line int, "
                        "line_count int, content text)")
            conn.commit()
            # The data is ready before the clock starts: only COPY and commit are timed.
            per_line_data = "".join(f"1\t{n}\t{t}\n" for n, t in enumerate(text, 1))
            chunked_data = "".join(
                f"1\t{first + 1}\t{len(text[first:first + chunk])}\t"
                + "\\n".join(text[first:first + chunk]) + "\n"
                for first in range(0, lines, chunk))
            began = time.perf_counter()
            cur.copy_expert("COPY per_line FROM STDIN", io.StringIO(per_line_data))
            conn.commit()
            per_line = lines / (time.perf_counter() - began)
            began = time.perf_counter()
            cur.copy_expert("COPY chunked FROM STDIN", io.StringIO(chunked_data))
            conn.commit()
            chunked = lines / (time.perf_counter() - began)
        return per_line, chunked
    finally:
        conn.close()


# -- where the CPU goes -------------------------------------------------------------------
_TICK = os.sysconf("SC_CLK_TCK")


def _cpu(pid: int) -> tuple[float, float]:
    """(own, reaped children's) CPU seconds of ``pid``; zeros when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0, 0.0
    utime, stime, cutime, cstime = (int(v) for v in fields[11:15])
    return (utime + stime) / _TICK, (cutime + cstime) / _TICK


class CpuMeter:
    """CPU seconds spent between ``start()`` and ``stop()`` by each part of the system:
    the pipeline process, the executor processes, their job processes, the PostgreSQL
    backends serving this database, and the whole RabbitMQ node (shared with anything
    else that uses it)."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.before: dict[str, float] = {}
        self.transactions = 0.0

    def _pids(self) -> dict[str, list[int]]:
        backends = [pid for (pid,) in self.cluster.query(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database()")]
        beam = subprocess.run(["pgrep", "-x", "beam.smp"], capture_output=True, text=True)
        return {
            "pipeline": [self.cluster.pipeline.popen.pid] if self.cluster.pipeline.popen else [],
            "executors": [e.popen.pid for e in self.cluster.executors if e.popen],
            "postgres": backends,
            "rabbitmq": [int(p) for p in beam.stdout.split()],
        }

    def _sample(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for part, pids in self._pids().items():
            for pid in pids:
                own, children = _cpu(pid)
                out[f"{part}:{pid}"] = own
                if part == "executors":
                    out[f"jobs:{pid}"] = children
        return out

    def _commits(self) -> float:
        rows = self.cluster.query("SELECT xact_commit + xact_rollback FROM pg_stat_database "
                                  "WHERE datname = current_database()")
        return float(rows[0][0])

    def start(self) -> None:
        self.before = self._sample()
        self.transactions = self._commits()

    def stop(self) -> dict[str, float]:
        """CPU seconds per part, and ``transactions``: database transactions meanwhile
        (the statistics collector lags by up to a second: indicative)."""
        spent: dict[str, float] = {"transactions": self._commits() - self.transactions}
        for key, value in self._sample().items():
            part = key.split(":", 1)[0]
            spent[part] = spent.get(part, 0.0) + value - self.before.get(key, 0.0)
        return spent


# -- through the system ------------------------------------------------------------------
def start_build(cluster: Cluster, client: Any, pipeline: str) -> tuple[int, float]:
    t = time.perf_counter()
    response = client.pipelines.StartPipelineBuild(
        pipeline_pb2.StartPipelineBuildRequest(pipeline=pipeline, request_id=uuid.uuid4().hex),
        timeout=30)
    return response.build.id, time.perf_counter() - t


def paced(
    cluster: Cluster, pipeline: str, count: int, rate: float
) -> tuple[list[int], list[float]]:
    """Open loop: call i starts at i/rate whatever earlier calls are doing."""
    client = cluster.client()
    ids: list[int] = []
    latencies: list[float] = []
    lock = threading.Lock()

    def one() -> None:
        build_id, latency = start_build(cluster, client, pipeline)
        with lock:
            ids.append(build_id)
            latencies.append(latency)

    began = time.perf_counter()
    with ThreadPoolExecutor(16) as pool:
        futures = []
        for i in range(count):
            delay = began + i / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            futures.append(pool.submit(one))
        for future in futures:
            future.result()
    return ids, latencies


def unpaced(cluster: Cluster, pipeline: str, count: int, clients: int) -> tuple[list[int], float]:
    """``count`` builds from ``clients`` threads as fast as they go; (ids, seconds)."""
    client = cluster.client()
    ids: list[int] = []
    lock = threading.Lock()
    shares = [count // clients + (1 if i < count % clients else 0) for i in range(clients)]

    def worker(n: int) -> None:
        for _ in range(n):
            build_id, _latency = start_build(cluster, client, pipeline)
            with lock:
                ids.append(build_id)

    began = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        for future in [pool.submit(worker, n) for n in shares]:
            future.result()
    return ids, time.perf_counter() - began


def wait_all(cluster: Cluster, ids: list[int], timeout: float) -> float:
    """Seconds until every build is terminal (polling the database)."""
    began = time.perf_counter()
    deadline = began + timeout
    while True:
        rows = cluster.query("SELECT count(*) FROM builds WHERE id = ANY(%s) AND "
                             "status = ANY(%s)", [ids, list(TERMINAL)])
        if rows[0][0] == len(ids):
            return time.perf_counter() - began
        if time.perf_counter() > deadline:
            raise ClusterError(f"builds not finished after {timeout:g}s")
        time.sleep(0.05)


def log_ingest(cluster: Cluster, lines: int, timeout: float) -> tuple[float, float]:
    """One job printing ``lines`` lines; (lines/s into PostgreSQL from the build's start,
    seconds the job's own output took)."""
    script = (f"awk 'BEGIN {{ for (i = 1; i <= {lines}; i++) "
              f"printf \"{LINE.replace('{}', '%d')}\\n\", i }}'")
    cluster.create_pipeline("loud", f"jobs:\n  loud:\n    steps:\n      - run: |\n"
                                    f"          {script}\n")
    (build_id,) = cluster.submit("loud", 1)
    began = time.perf_counter()
    deadline = began + timeout
    while True:
        rows = cluster.query("SELECT COALESCE(SUM(c.line_count), 0) FROM log_chunks c "
                             "JOIN jobs j ON j.id = c.job_id WHERE j.build_id = %s", [build_id])
        if rows[0][0] >= lines:
            elapsed = time.perf_counter() - began
            break
        if time.perf_counter() > deadline:
            raise ClusterError(f"only {rows[0][0]} of {lines} lines after {timeout:g}s")
        time.sleep(0.05)
    (job,) = cluster.jobs(build_id)
    spans = cluster.query("SELECT EXTRACT(EPOCH FROM finished_at - started_at) FROM jobs "
                          "WHERE id = %s", [job["id"]])
    return lines / elapsed, float(spans[0][0] or 0.0)


def acceptance(args: argparse.Namespace, cluster: Cluster, label: str) -> list[int]:
    """StartPipelineBuild latency at ``args.rate`` offered; prints it, returns the builds."""
    cluster.submit("small", 5)  # warm up connections and caches
    paced_ids, latencies = paced(cluster, "small", args.paced, args.rate)
    print(f"  StartPipelineBuild at {args.rate:g} builds/s offered ({args.paced} builds, "
          f"{label}): p50 {statistics.median(latencies) * 1000:.1f} ms, "
          f"p99 {_percentile(latencies, 0.99) * 1000:.1f} ms, "
          f"max {max(latencies) * 1000:.1f} ms")
    return paced_ids


def accepting_alone(args: argparse.Namespace, cluster: Cluster) -> None:
    grpc_rate, grpc_p99 = raw_grpc(cluster.pipeline.address, args.raw_calls)
    print(f"raw gRPC unary (health Check, 1 thread): {grpc_rate:,.0f} calls/s, "
          f"p99 {grpc_p99:.2f} ms")
    print(f"raw confirmed publish (pika, 1 connection): "
          f"{raw_publish(AMQP_URL, args.raw_calls):,.0f} msg/s")
    print(f"raw PostgreSQL insert (1 row per transaction): "
          f"{raw_insert(cluster.database_url, args.raw_calls):,.0f} rows/s")
    print("accepting alone (1 pipeline + 2 executor processes; builds published to a queue "
          "nobody consumes, so running them takes no CPU):")
    cluster.create_pipeline("small", SMALL)
    acceptance(args, cluster, "accepting only")
    meter = CpuMeter(cluster)
    meter.start()
    _ids, submit_s = unpaced(cluster, "small", args.builds, args.clients)
    spent = meter.stop()
    print(f"  {args.builds} builds unpaced from {args.clients} clients: "
          f"{args.builds / submit_s:,.1f} builds/s accepted")
    print_cpu(spent, args.builds)


def print_cpu(spent: dict[str, float], builds: int) -> None:
    cores = os.cpu_count() or 1
    transactions = spent.pop("transactions")
    total = sum(spent.values())
    print("  CPU per build (ms): " + ", ".join(
        f"{part} {seconds * 1000 / builds:.1f}" for part, seconds in spent.items() if seconds)
        + f"; total {total * 1000 / builds:.1f} → at most {cores * builds / total:,.0f} "
        f"builds/s on {cores} cores; {transactions / builds:.0f} database transactions "
        "per build")


def whole_system(args: argparse.Namespace, cluster: Cluster) -> None:
    print("the whole system (1 pipeline + 2 executor processes running the builds):")
    cluster.create_pipeline("small", SMALL)
    wait_all(cluster, acceptance(args, cluster, "while running them"), timeout=600)
    meter = CpuMeter(cluster)
    meter.start()
    ids, submit_s = unpaced(cluster, "small", args.builds, args.clients)
    done_s = wait_all(cluster, ids, timeout=1200) + submit_s
    spent = meter.stop()
    statuses = sorted({s for (s,) in cluster.query(
        "SELECT DISTINCT status FROM builds WHERE id = ANY(%s)", [ids])})
    owners = dict(cluster.query("SELECT owner, count(*) FROM builds WHERE id = ANY(%s) "
                                "GROUP BY owner", [ids]))
    print(f"  {args.builds} builds x 3 'true' jobs, unpaced from {args.clients} clients: "
          f"{args.builds / submit_s:,.1f} builds/s accepted, "
          f"{args.builds / done_s:,.1f} builds/s completed (all done in {done_s:.1f}s; "
          f"{statuses}; per executor {sorted(owners.values())})")
    print_cpu(spent, args.builds)


def logs(args: argparse.Namespace, cluster: Cluster) -> None:
    ingest, job_s = log_ingest(cluster, args.log_lines, timeout=600)
    per_line, chunked = raw_copy(cluster.database_url, args.log_lines, 1000)
    print(f"log ingest, 1 job x {args.log_lines:,} lines: {ingest:,.0f} lines/s into "
          f"PostgreSQL (the job ran {job_s:.1f}s)")
    print(f"  raw COPY of the same lines: {per_line:,.0f} lines/s one row per line "
          f"(ingest = {ingest / per_line:.0%}), {chunked:,.0f} lines/s in 1000-line chunks "
          f"(ingest = {ingest / chunked:.0%})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--builds", type=int, default=1000)
    parser.add_argument("--paced", type=int, default=250, help="builds offered at --rate")
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument("--clients", type=int, default=8, help="threads of the unpaced run")
    parser.add_argument("--log-lines", type=int, default=1_000_000)
    parser.add_argument("--raw-calls", type=int, default=2000)
    parser.add_argument("--parts", default="accept,full,logs",
                        help="comma-separated subset of accept,full,logs")
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    env = {
        "CONVEYOR_MAX_QUEUED_PER_PIPELINE": str(10 * (args.builds + args.paced)),
        "CONVEYOR_LEASE_S": "30",
        "CONVEYOR_RECONCILE_S": "5",
    }
    print(f"{os.cpu_count()} cores; every process below (Conveyor, jobs, PostgreSQL, "
          "RabbitMQ) shares them")
    with tempfile.TemporaryDirectory(prefix="conveyor-bench-e2e-") as tmp:
        if "accept" in parts:
            with Cluster(Path(tmp) / "accept", POSTGRES_URL, AMQP_URL, executors=2, env=env,
                         unconsumed=True) as cluster:
                accepting_alone(args, cluster)
        if parts & {"full", "logs"}:
            with Cluster(Path(tmp) / "full", POSTGRES_URL, AMQP_URL, executors=2,
                         env=env) as cluster:
                if "full" in parts:
                    whole_system(args, cluster)
                if "logs" in parts:
                    logs(args, cluster)


if __name__ == "__main__":
    main()
