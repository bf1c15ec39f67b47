"""A Conveyor cluster of real OS processes for end-to-end tests and benches.

One ``serve --role pipeline`` process and N ``serve --role executor`` processes run on a
fresh PostgreSQL database of their own and on the real RabbitMQ under queue names of
their own. Each process has its own work directory and writes stdout/stderr to files, so
a failing test can show what every process said (``Cluster.tails``). ``close`` kills and
reaps every process and deletes the database, queues and exchanges, whatever happened.

The tests drive it as a user would (gRPC with a bearer token) and judge it from the
database, which is the system's source of truth.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import psycopg2  # type: ignore[import-untyped]

from conveyor.v1 import pipeline_pb2
from rpc.client import Client, connect
from support import rabbit
from support.cluster_processes import ROOT, Process, issue_admin_token

TERMINAL = ("SUCCEEDED", "FAILED", "CANCELLED", "ERROR")
START_TIMEOUT_S = 30.0
T = TypeVar("T")


class ClusterError(AssertionError):
    """The cluster did not do what a test waited for (carries the processes' output)."""


def _admin_connection(url: str) -> Any:
    conn = psycopg2.connect(url, connect_timeout=5)
    conn.autocommit = True
    return conn


def _database_url(base: str, name: str) -> str:
    return urlunsplit(urlsplit(base)._replace(path=f"/{name}"))


class Cluster:
    """Real Conveyor processes on a private database and private queues.

    ``env`` adds or overrides ``CONVEYOR_*`` variables of every process. ``unconsumed``:
    the pipeline publishes to a queue that no executor consumes (builds stay QUEUED), to
    measure accepting builds apart from running them.
    """

    def __init__(
        self,
        tmp_path: Path,
        postgres_url: str,
        amqp_url: str,
        *,
        executors: int = 2,
        env: dict[str, str] | None = None,
        unconsumed: bool = False,
    ) -> None:
        tag = uuid.uuid4().hex[:10]
        self.tmp_path = tmp_path
        self.admin_url = postgres_url
        self.db_name = f"conveyor_e2e_{tag}"
        self.database_url = _database_url(postgres_url, self.db_name)
        self.amqp_url = amqp_url
        self.queue = f"e2e-{tag}.builds"
        self.prefix = f"e2e-{tag}"
        self.internal_token = secrets.token_urlsafe(24)
        self.token = ""
        self.extra_env = dict(env or {})
        # The pipeline publishes to a queue no executor consumes: the acceptance path
        # alone (benchmarks), builds stay QUEUED.
        self.pipeline_queue = f"{self.queue}.unconsumed" if unconsumed else self.queue
        self.executors = [
            Process(f"exec-{chr(ord('a') + i)}", "executor", tmp_path / f"exec-{i}",
                    "127.0.0.1:0")
            for i in range(executors)
        ]
        self.pipeline = Process("pipeline", "pipeline", tmp_path / "pipeline", "127.0.0.1:0")
        self._db_created = False
        self._db: Any = None
        self._clients: list[Client] = []

    # -- lifecycle ---------------------------------------------------------------------
    def start(self) -> None:
        """Create and migrate the database, then start the executors and the pipeline."""
        admin = _admin_connection(self.admin_url)
        try:
            with admin.cursor() as cur:
                cur.execute(f"CREATE DATABASE {self.db_name}")
        finally:
            admin.close()
        self._db_created = True
        migrate = subprocess.run(
            [sys.executable, "-m", "cli.main", "db", "migrate",
             "--database-url", self.database_url],
            cwd=ROOT, capture_output=True, text=True, timeout=60,
        )
        if migrate.returncode != 0:
            raise ClusterError(f"db migrate failed:\n{migrate.stdout}\n{migrate.stderr}")
        self.token = issue_admin_token(self.database_url)
        for proc in self.executors:
            self._spawn(proc)
        for proc in self.executors:
            self._wait_serving(proc)
        self._spawn(self.pipeline)
        self._wait_serving(self.pipeline)

    def close(self) -> None:
        """Kill and reap every process; drop the database, queues and exchanges."""
        for client in self._clients:
            with contextlib.suppress(Exception):
                client.close()
        for proc in [self.pipeline, *self.executors]:
            self._reap(proc, signal.SIGKILL)
        if self._db is not None:
            with contextlib.suppress(Exception):
                self._db.close()
        if self._db_created:
            admin = _admin_connection(self.admin_url)
            try:
                with admin.cursor() as cur:
                    cur.execute(f"DROP DATABASE IF EXISTS {self.db_name} WITH (FORCE)")
            finally:
                admin.close()
        self._delete_broker_objects()

    def __enter__(self) -> Cluster:
        try:
            self.start()
        except BaseException:
            tails = self.tails()
            self.close()
            raise ClusterError(f"the cluster did not start\n{tails}") from None
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _env(self, proc: Process) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CONVEYOR_")}
        env.update({
            "PYTHONUNBUFFERED": "1",
            "CONVEYOR_ROLE": proc.role,
            "CONVEYOR_LISTEN": proc.listen,
            "CONVEYOR_DATABASE_URL": self.database_url,
            "CONVEYOR_AMQP_URL": self.amqp_url,
            "CONVEYOR_QUEUE_NAME": self.queue,
            "CONVEYOR_QUEUE_PREFIX": self.prefix,
            "CONVEYOR_INTERNAL_TOKEN": self.internal_token,
            "CONVEYOR_EXECUTOR_ID": proc.executor_id,
            "CONVEYOR_WORKDIR": str(proc.workdir / "work"),
            "CONVEYOR_HOME": str(proc.workdir / "home"),
            "CONVEYOR_METRICS_LISTEN": "off",
            "CONVEYOR_LEASE_S": "2",
            "CONVEYOR_RECONCILE_S": "0.5",
            "CONVEYOR_DRAIN_S": "1",
            "CONVEYOR_DB_RETRY_S": "60",
            # The jobs count their completions in a file of the test's: outside a sandbox.
            "CONVEYOR_LOCAL_TRUSTED": "1",
        })
        if proc.role == "pipeline":
            env["CONVEYOR_EXECUTOR_ADDR"] = ",".join(e.address for e in self.executors)
            env["CONVEYOR_QUEUE_NAME"] = self.pipeline_queue
        env.update(self.extra_env)
        return env

    def _spawn(self, proc: Process) -> None:
        proc.incarnation += 1
        proc.workdir.mkdir(parents=True, exist_ok=True)
        with proc.stdout.open("wb") as out, proc.stderr.open("wb") as err:
            proc.popen = subprocess.Popen(
                [sys.executable, "-m", "cli.main", "serve", "--log-level", "WARNING"],
                cwd=ROOT, env=self._env(proc), stdout=out, stderr=err,
                stdin=subprocess.DEVNULL,
            )

    def _wait_serving(self, proc: Process) -> None:
        prefix = f"conveyor serving role {proc.role} on "

        def serving() -> str | None:
            assert proc.popen is not None
            first = proc.stdout.read_text(errors="replace").split("\n", 1)
            if len(first) == 2 and first[0].startswith(prefix):
                return first[0][len(prefix):].strip()
            if proc.popen.poll() is not None:
                raise ClusterError(f"{proc.name} exited with {proc.popen.returncode} before "
                                   f"serving\n{proc.tail()}")
            return None

        proc.address = self.wait_for(f"{proc.name} to serve", serving, START_TIMEOUT_S)
        proc.listen = proc.address  # a restart comes back on the same address

    def _reap(self, proc: Process, sig: signal.Signals, timeout: float = 10.0) -> int | None:
        popen = proc.popen
        if popen is None:
            return None
        if popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                popen.send_signal(sig)
            try:
                popen.wait(timeout)
            except subprocess.TimeoutExpired:
                popen.kill()
                popen.wait(10)
        proc.popen = None
        proc.exit_codes.append(popen.returncode)
        return popen.returncode

    # -- executors ---------------------------------------------------------------------
    def executor(self, name: str) -> Process:
        for proc in self.executors:
            if proc.name == name:
                return proc
        raise KeyError(f"no executor {name!r}; have {[p.name for p in self.executors]}")

    def kill_executor(self, name: str) -> int | None:
        """``kill -9``: no shutdown code runs; returns the exit status."""
        return self._reap(self.executor(name), signal.SIGKILL)

    def terminate_executor(self, name: str, timeout: float = 30.0) -> int | None:
        """SIGTERM and wait for the process to exit by itself; returns its exit code."""
        return self._reap(self.executor(name), signal.SIGTERM, timeout)

    def start_executor(self, name: str) -> None:
        """Start (again) an executor that is not running, on its previous address."""
        proc = self.executor(name)
        if proc.alive:
            raise ClusterError(f"{name} is running already")
        self._spawn(proc)
        self._wait_serving(proc)

    def restart_executor(self, name: str) -> None:
        self.terminate_executor(name)
        self.start_executor(name)

    # -- clients -----------------------------------------------------------------------
    def client(self) -> Client:
        """A gRPC client of the pipeline process with the admin token (closed at close)."""
        client = connect(self.pipeline.address, self.token)
        self._clients.append(client)
        return client

    def create_pipeline(self, name: str, workflow_yaml: str) -> None:
        self.client().pipelines.CreatePipeline(
            pipeline_pb2.CreatePipelineRequest(name=name, workflow_yaml=workflow_yaml),
            timeout=30)

    def submit(self, pipeline: str, count: int = 1, timeout: float = 30.0) -> list[int]:
        """Start ``count`` builds of ``pipeline`` through StartPipelineBuild; their ids."""
        client = self.client()
        ids = []
        for _ in range(count):
            response = client.pipelines.StartPipelineBuild(
                pipeline_pb2.StartPipelineBuildRequest(pipeline=pipeline,
                                                       request_id=uuid.uuid4().hex),
                timeout=timeout)
            ids.append(response.build.id)
        return ids

    def get_build(self, build_id: int) -> Any:
        return self.client().pipelines.GetBuild(
            pipeline_pb2.GetBuildRequest(build_id=build_id), timeout=30).build

    # -- waiting -----------------------------------------------------------------------
    def wait_for(self, what: str, probe: Callable[[], T | None], timeout: float,
                 every: float = 0.1) -> T:
        """Poll ``probe`` until it returns a value other than None; fail with the
        processes' output after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            value = probe()
            if value is not None:
                return value
            if time.monotonic() >= deadline:
                raise ClusterError(f"timed out after {timeout:g}s waiting for {what}\n"
                                   f"{self.tails()}")
            time.sleep(every)

    def wait_terminal(self, build_ids: Sequence[int], timeout: float = 60.0) -> dict[int, str]:
        """Wait until every build is in a terminal state; their statuses."""
        ids = list(build_ids)

        def done() -> dict[int, str] | None:
            statuses = self.build_statuses(ids)
            return statuses if all(s in TERMINAL for s in statuses.values()) else None

        try:
            return self.wait_for(f"{len(ids)} builds to finish", done, timeout, every=0.2)
        except ClusterError as exc:
            pending = {k: v for k, v in self.build_statuses(ids).items() if v not in TERMINAL}
            raise ClusterError(f"builds not finished: {pending}\n{exc}") from None

    # -- the database ------------------------------------------------------------------
    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Rows of ``sql`` on the cluster's database (autocommit; reconnects when cut)."""
        for attempt in range(2):
            try:
                if self._db is None or self._db.closed:
                    self._db = _admin_connection(self.database_url)
                with self._db.cursor() as cur:
                    cur.execute(sql, tuple(params))
                    return list(cur.fetchall())
            except (psycopg2.OperationalError, psycopg2.InterfaceError):
                with contextlib.suppress(Exception):
                    self._db.close()
                self._db = None
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def build_statuses(self, build_ids: Sequence[int]) -> dict[int, str]:
        rows = self.query("SELECT id, status FROM builds WHERE id = ANY(%s)", [list(build_ids)])
        return {row[0]: row[1] for row in rows}

    def builds(self) -> list[dict[str, Any]]:
        rows = self.query("SELECT id, status, reason, owner, published, attempt FROM builds "
                          "ORDER BY id")
        keys = ("id", "status", "reason", "owner", "published", "attempt")
        return [dict(zip(keys, row, strict=True)) for row in rows]

    def jobs(self, build_id: int | None = None) -> list[dict[str, Any]]:
        where, params = ("WHERE build_id = %s", [build_id]) if build_id is not None else ("", [])
        rows = self.query(f"SELECT id, build_id, key, status, reason, attempt FROM jobs {where} "
                          "ORDER BY build_id, key, attempt", params)
        keys = ("id", "build_id", "key", "status", "reason", "attempt")
        return [dict(zip(keys, row, strict=True)) for row in rows]

    def log_lines(self, job_row_id: int) -> list[tuple[int, str]]:
        """A job attempt's stored log as (line number, text), in line order."""
        rows = self.query("SELECT first_line, content FROM log_chunks WHERE job_id = %s "
                          "ORDER BY first_line", [job_row_id])
        out = []
        for first, content in rows:
            for offset, text in enumerate(content.split("\n")):
                out.append((first + offset, text))
        return out

    def owners(self, build_ids: Sequence[int]) -> dict[int, str | None]:
        rows = self.query("SELECT id, owner FROM builds WHERE id = ANY(%s)", [list(build_ids)])
        return {row[0]: row[1] for row in rows}

    @contextlib.contextmanager
    def rows_locked(self, table: str, ids: Sequence[int]) -> Iterator[None]:
        """Rows of ``table`` locked (FOR UPDATE) by a transaction of the test while
        inside, as a slow writer would hold them."""
        conn = psycopg2.connect(self.database_url, connect_timeout=5)
        try:
            with conn.cursor() as cur:
                cur.execute(f"SELECT id FROM {table} WHERE id = ANY(%s) FOR UPDATE", [list(ids)])
            yield
        finally:
            conn.rollback()
            conn.close()

    @contextlib.contextmanager
    def database_unavailable(self) -> Iterator[None]:
        """No connection to the cluster's database (and only it) while inside."""
        admin = _admin_connection(self.admin_url)
        try:
            with admin.cursor() as cur:
                cur.execute(f"ALTER DATABASE {self.db_name} WITH ALLOW_CONNECTIONS false")
                cur.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                            "WHERE datname = %s AND pid <> pg_backend_pid()", [self.db_name])
            yield
        finally:
            with admin.cursor() as cur:
                cur.execute(f"ALTER DATABASE {self.db_name} WITH ALLOW_CONNECTIONS true")
            admin.close()

    # -- the broker ---------------------------------------------------------------------
    def publish_raw(self, body: bytes) -> None:
        """Put ``body`` straight on the build queue, as a foreign producer would."""
        rabbit.publish_raw(self.amqp_url, self.queue, body)

    def dead_letters(self) -> list[bytes]:
        """Bodies waiting in the dead-letter queue (taken off it)."""
        return rabbit.drain(self.amqp_url, f"{self.queue}.dead")

    def ready(self) -> int:
        """Build messages waiting in the queue, not delivered to any executor yet."""
        return rabbit.ready_count(self.amqp_url, self.queue)

    def consumers(self) -> int:
        """Consumers of the build queue now (one per connected executor)."""
        return rabbit.consumer_count(self.amqp_url, self.queue)

    def _delete_broker_objects(self) -> None:
        queues = {self.queue, self.pipeline_queue}
        rabbit.delete(self.amqp_url, queues=[*queues, *(f"{q}.dead" for q in queues)],
                      exchanges=(f"{self.prefix}.control", f"{self.prefix}.dead-letter"))

    def logged(self, pattern: str, procs: Sequence[Process] | None = None) -> bool:
        """Whether any of ``procs`` (default: every executor) logged a line matching the
        regular expression ``pattern`` in its current incarnation."""
        regex = re.compile(pattern)
        for proc in procs if procs is not None else self.executors:
            if proc.stderr.exists() and regex.search(proc.stderr.read_text(errors="replace")):
                return True
        return False

    # -- diagnostics -------------------------------------------------------------------
    def tails(self, lines: int = 40) -> str:
        return "\n".join(p.tail(lines) for p in [self.pipeline, *self.executors]
                         if p.incarnation)
