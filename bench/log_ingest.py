"""Log ingest cost by line length: one job floods its log through the whole local path.

    .venv/bin/python -m bench.log_ingest [--bytes 256Mi] [--line-bytes 100Mi]
        [--only lines100,lines64k,oneline] [--cap 0] [--no-read]

Each scenario runs in a fresh process (so peak memory is its own): an all-in-one
runtime (SQLite in a scratch directory, memory queue, local backend) runs one job whose
step prints ``--bytes`` bytes as 100-byte lines (``lines100``), as 64 KiB lines
(``lines64k``), or ``--line-bytes`` bytes as one line without a newline (``oneline``).
The output goes through the backend's reader, the marker parser, the backpressure gate,
the LogActor's batches and the store, as in production. Then every stored line is read
back through StreamBuildLogs, as ``conveyor logs`` does.

Prints per scenario: ingest seconds (build start to build end) and MB/s, the process's
peak RSS and its RSS before the build, lines stored, the read-back time, the largest
stream message, and the job's status and reason. ``--cap`` sets
CONVEYOR_MAX_JOB_LOG_BYTES (0: no cap, so that the whole output is stored; a build from
before the setting existed ignores it). Asserts nothing.

Figures (2 shared cores, load 4-9, SQLite; before → after issue 11): 2 GiB of 100-byte
lines 48.8 s (16 s at light load) / 99 MiB → 26.9 s / 107 MiB, read back in 140 s (256
MiB took 291 s before: reads were quadratic); 2 GiB of 64 KiB lines 46.7 s / 790 MiB,
unreadable (65 MB messages) → 22.6 s / 111 MiB, read in 22.5 s; one 100 MiB line 129.5 s
/ 461 MiB, unreadable → 0.8 s / 105 MiB (400 MiB: 5.6 s / 101 MiB).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import grpc

SCENARIOS = ("lines100", "lines64k", "oneline")
_UNITS = {"": 1, "Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30}


def _size(text: str) -> int:
    for unit in ("Gi", "Mi", "Ki", ""):
        if unit and text.endswith(unit):
            return int(float(text[: -len(unit)]) * _UNITS[unit])
    return int(text)


def _step(scenario: str, size: int) -> str:
    if scenario == "lines100":
        return f"yes \"$(printf '%099d' 0)\" | head -c {size}"
    if scenario == "lines64k":
        return f"yes \"$(printf '%065535d' 0)\" | head -c {size}"
    return f"head -c {size} /dev/zero | tr '\\0' a"


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@contextmanager
def _engine(tmp: Path, cap: int) -> Iterator[Any]:
    from rpc.client import connect
    from runtime import Config, Runtime
    from support.harness import Engine, issue_admin_token

    env = {"CONVEYOR_MAX_JOB_LOG_BYTES": str(cap or 1 << 50)}
    cfg = Config.from_env(env=env, role="all", listen="127.0.0.1:0",
                          database_url=f"sqlite:///{tmp / 'conveyor.db'}", queue_url="memory://",
                          workdir=tmp / "work", migrate_on_start=True)
    runtime = Runtime(cfg)
    try:
        runtime.start()
        with connect(runtime.address, issue_admin_token()) as client:
            yield Engine(runtime, client, tmp)
    finally:
        runtime.stop()


def _child(scenario: str, size: int, cap: int, read_back: bool) -> dict[str, object]:
    from conveyor.v1 import pipeline_pb2
    from support.harness import JOB_STATUS

    with tempfile.TemporaryDirectory() as tmp, _engine(Path(tmp), cap) as eng:
        before = _rss_mib()
        workflow = json.dumps({"jobs": {"flood": {"steps": [{"run": _step(scenario, size)}]}}})
        began = time.perf_counter()
        result = eng.run(workflow, timeout=3600)
        ingest = time.perf_counter() - began
        peak = _rss_mib()
        job = result.job("flood")
        # Printed now: a read that kills the process (it did) leaves the ingest figures.
        print(json.dumps({"ingest_s": ingest, "rss_before_mib": before, "rss_peak_mib": peak,
                          "status": JOB_STATUS[job.status], "reason": job.reason}), flush=True)
        if not read_back:
            return {"read_error": "not read (--no-read)"}
        began = time.perf_counter()
        lines = 0
        largest = 0
        read_error = ""
        try:
            call = eng.client.pipelines.StreamBuildLogs(
                pipeline_pb2.StreamBuildLogsRequest(build_id=result.build.id), timeout=3600)
            for message in call:
                lines += len(message.lines)
                largest = max(largest, message.ByteSize())
        except grpc.RpcError as exc:  # what a client sees is the figure
            read_error = f"{exc.code().name}: {exc.details()}"
        read = time.perf_counter() - began
        return {"lines": lines, "read_s": read, "largest_message": largest,
                "read_error": read_error[:200]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bytes", default="256Mi", help="output of lines100 / lines64k")
    parser.add_argument("--line-bytes", default="100Mi", help="the one line of oneline")
    parser.add_argument("--only", default=",".join(SCENARIOS))
    parser.add_argument("--cap", default="0", help="CONVEYOR_MAX_JOB_LOG_BYTES; 0: none")
    parser.add_argument("--no-read", action="store_true", help="skip reading the log back")
    parser.add_argument("--child", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        size = _size(args.line_bytes if args.child == "oneline" else args.bytes)
        print(json.dumps(_child(args.child, size, _size(args.cap), not args.no_read)))
        return
    for scenario in args.only.split(","):
        size = _size(args.line_bytes if scenario == "oneline" else args.bytes)
        done = subprocess.run(
            [sys.executable, "-m", "bench.log_ingest", "--child", scenario, "--bytes", args.bytes,
             "--line-bytes", args.line_bytes, "--cap", args.cap,
             *(["--no-read"] if args.no_read else [])],
            capture_output=True, text=True, check=False)
        r: dict[str, Any] = {"lines": 0, "read_s": 0.0, "largest_message": 0, "read_error": ""}
        for line in done.stdout.splitlines():
            if line.startswith("{"):
                r.update(json.loads(line))
        if "ingest_s" not in r:
            print(f"{scenario}: failed (exit {done.returncode}): {done.stderr[-2000:]}")
            continue
        if done.returncode != 0:
            r["read_error"] = f"the process died (exit {done.returncode}) while reading"
        print(
            f"{scenario:9} {size / (1 << 20):8.0f} MiB  ingest {r['ingest_s']:7.1f} s "
            f"{size / r['ingest_s'] / 1e6:6.1f} MB/s  peak RSS {r['rss_peak_mib']:6.0f} MiB "
            f"(before {r['rss_before_mib']:.0f})  {r['lines']:>9,} lines read in "
            f"{r['read_s']:5.1f} s, largest message {r['largest_message'] / (1 << 20):.1f} MiB"
            f"{'  READ: ' + r['read_error'] if r['read_error'] else ''}"
            f"  job {r['status']} ({r['reason']})"
        )


if __name__ == "__main__":
    main()
