"""Log write throughput of the store: multi-row INSERT vs COPY, on SQLite and PostgreSQL.

    .venv/bin/python -m bench.store_logs [--lines 200000] [--chunk 200] [--batch 20]
        [--postgres postgresql://postgres@127.0.0.1:5432/test]

Writes like the log actor does (``--batch`` chunks of ``--chunk`` lines per call) into
a fresh database and prints lines/s; the faster PostgreSQL method is
`store.logs.DEFAULT_POSTGRES_METHOD`. PostgreSQL runs in a scratch database it drops.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from urllib.parse import urlsplit, urlunsplit

import psycopg2  # type: ignore[import-untyped]

import store
from store import JobInit, LogChunkInit, LogWriteMethod


def _run(url: str, method: LogWriteMethod, lines: int, chunk: int, batch: int) -> float:
    db = store.open_database(url)
    try:
        store.migrate(db)
        pipeline = store.create_pipeline(f"bench-{method}", "y")
        build, _ = store.create_build(pipeline.id, workflow_yaml="y")
        (job,) = store.create_jobs(build.id, [JobInit("job", "job", "job")])
        text = "2026-01-01T00:00:00Z step 3: compiling module {} of the project ........."
        chunks = [
            LogChunkInit(
                job.id,
                first,
                tuple(text.format(n) for n in range(first, min(first + chunk, lines + 1))),
            )
            for first in range(1, lines + 1, chunk)
        ]
        started = time.perf_counter()
        for i in range(0, len(chunks), batch):
            store.append_log_chunks(chunks[i : i + batch], method=method)
        elapsed = time.perf_counter() - started
        assert store.log_line_count(job.id) == lines
        return lines / elapsed
    finally:
        store.close_database()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=200_000)
    parser.add_argument("--chunk", type=int, default=200, help="lines per chunk row")
    parser.add_argument("--batch", type=int, default=20, help="chunks per append call")
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        rate = _run(f"sqlite:///{tmp}/bench.db", "insert", args.lines, args.chunk, args.batch)
        print(f"sqlite      insert {rate:12,.0f} lines/s  (COPY does not exist on SQLite)")

    admin = psycopg2.connect(args.postgres)
    admin.autocommit = True
    try:
        methods: tuple[LogWriteMethod, ...] = ("insert", "copy")
        for method in methods:
            name = f"conveyor_bench_{os.getpid()}_{method}"
            with admin.cursor() as cur:
                cur.execute(f"CREATE DATABASE {name}")
            try:
                url = urlunsplit(urlsplit(args.postgres)._replace(path=f"/{name}"))
                rate = _run(url, method, args.lines, args.chunk, args.batch)
                print(f"postgresql  {method:6s} {rate:12,.0f} lines/s")
            finally:
                with admin.cursor() as cur:
                    cur.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    finally:
        admin.close()


if __name__ == "__main__":
    main()
