"""Real `conveyor` processes against a fresh PostgreSQL database of their own.

`fresh_pg` creates a database per test (dropped afterwards); `Served` runs a command
whose output is read by a named thread, so a test can wait for a line with a timeout
instead of blocking on a pipe; `cli` runs a command to completion.
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg2  # type: ignore[import-untyped]
import pytest

from tests.services import require_postgres

ROOT = Path(__file__).resolve().parents[2]
READER_THREAD = "test-process-output"


def admin_connection(url: str) -> psycopg2.extensions.connection:
    conn = psycopg2.connect(url)
    conn.autocommit = True
    return conn


def pg_execute(url: str, *statements: str) -> list[tuple[object, ...]]:
    """Run statements on ``url`` (autocommit); the last one's rows."""
    conn = admin_connection(url)
    try:
        rows: list[tuple[object, ...]] = []
        with conn.cursor() as cur:
            for statement in statements:
                cur.execute(statement)
                rows = cur.fetchall() if cur.description else []
        return rows
    finally:
        conn.close()


@pytest.fixture
def fresh_pg() -> Iterator[str]:
    """The URL of a new, empty PostgreSQL database, dropped after the test."""
    base = require_postgres()
    name = f"conveyor_t{os.getpid()}_{uuid.uuid4().hex[:8]}"
    pg_execute(base, f"CREATE DATABASE {name}")
    try:
        yield urlunsplit(urlsplit(base)._replace(path=f"/{name}"))
    finally:
        pg_execute(base, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def env_for(tmp_path: Path, database_url: str, **extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items()
           if not key.startswith("CONVEYOR_")}
    env.update({
        "PYTHONUNBUFFERED": "1",
        "CONVEYOR_HOME": str(tmp_path / "home"),
        "CONVEYOR_LISTEN": "127.0.0.1:0",
        "CONVEYOR_METRICS_LISTEN": "127.0.0.1:0",
        "CONVEYOR_DATABASE_URL": database_url,
        "CONVEYOR_WORKDIR": str(tmp_path / "work"),
    })
    env.update(extra)
    return env


def cli(env: dict[str, str], *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cli.main", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


class Served:
    """A running `conveyor …` process; stdout and stderr merged, read line by line."""

    def __init__(self, env: dict[str, str], *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "cli.main", *args], cwd=ROOT, env=env,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.output: list[str] = []
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, name=READER_THREAD)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.output.append(line)
            self._lines.put(line)
        self._lines.put(None)

    def wait_for(self, text: str, timeout: float = 60) -> str:
        """The first line from now on that contains ``text``."""
        give_up = time.monotonic() + timeout
        while True:
            try:
                line = self._lines.get(timeout=max(0.0, give_up - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no line with {text!r} within {timeout}s:\n"
                                     + "".join(self.output)) from None
            if line is None:
                raise AssertionError(f"the process ended before saying {text!r}:\n"
                                     + "".join(self.output))
            if text in line:
                return line

    def terminate_and_time(self, bound: float) -> tuple[int, float]:
        """SIGTERM, then (exit code, seconds it took); fails past ``bound``."""
        started = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(bound)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"still running {bound}s after SIGTERM:\n"
                                 + "".join(self.output)) from None
        return code, time.monotonic() - started

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        self._reader.join(10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()

    @property
    def text(self) -> str:
        self._reader.join(10)
        return "".join(self.output)


@pytest.fixture
def served() -> Iterator[list[Served]]:
    """Processes a test starts (append them); each one is killed and reaped after it."""
    started: list[Served] = []
    yield started
    for process in started:
        process.close()
