"""Output throughput of a job's runner script, read and parsed as the local backend does.

    .venv/bin/python -m bench.script_output [--lines 1000000] [--shell /bin/sh] [--repeat 3]
        (--shell is split into words: "busybox sh", "bash --posix")

Renders a one-step job printing ``--lines`` lines of 80 characters, runs it with
``--shell``, reads its stdout in 64 KiB ``os.read`` chunks, splits lines, decodes them
and feeds every line to :class:`workflow.markers.MarkerParser`; then does the same for
the plain ``yes | head`` pipeline without the script (the raw reference: same reader,
same parser). Prints lines/s of both (best of ``--repeat``) and their ratio.
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import tempfile
import time
from pathlib import Path

from workflow.markers import Event, MarkerParser, new_nonce
from workflow.model import JobSpec, Plan, StepSpec
from workflow.script import render_job_script

READ_SIZE = 1 << 16


def _producer(lines: int) -> str:
    return f"yes \"$(printf '%080d' 0)\" | head -n {lines}"


def _consume(argv: list[str], cwd: Path, nonce: str) -> tuple[int, list[Event], float]:
    """(ordinary lines, events, seconds) of one run, from spawn to EOF and exit."""
    parser = MarkerParser(nonce)
    events: list[Event] = []
    count = 0
    start = time.perf_counter()
    proc = subprocess.Popen(
        argv, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    tail = b""
    while True:
        data = os.read(fd, READ_SIZE)
        if not data:
            break
        parts = (tail + data).split(b"\n")
        tail = parts.pop()
        for raw in parts:
            text, event = parser.feed(raw.decode("utf-8", errors="replace"))
            if text is not None:
                count += 1
            if event is not None:
                events.append(event)
    proc.stdout.close()
    code = proc.wait()
    elapsed = time.perf_counter() - start
    if tail or code != 0:
        raise SystemExit(f"{argv[0]}: exit code {code}, unterminated tail {tail[:80]!r}")
    return count, events, elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--shell", default="/bin/sh")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    lines: int = args.lines
    shell = shlex.split(args.shell)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        job = JobSpec(
            key="bench",
            job_id="bench",
            name="bench",
            steps=(StepSpec(index=0, name="print", run=_producer(lines)),),
        )
        nonce = new_nonce()
        script = work / "job.sh"
        script.write_text(render_job_script(job, Plan("bench", (job,)), {}, nonce))
        runs = {
            "raw (yes | head)": [*shell, "-c", _producer(lines)],
            "runner script": [*shell, str(script)],
        }
        best: dict[str, float] = {}
        for _ in range(args.repeat):
            for label, argv in runs.items():
                count, events, elapsed = _consume(argv, work, nonce)
                if count != lines:
                    raise SystemExit(f"{label}: {count} ordinary lines, expected {lines}")
                if label == "runner script" and len(events) != 3:
                    raise SystemExit(f"{label}: expected 3 events, got {events}")
                best[label] = max(best.get(label, 0.0), lines / elapsed)
    for label, rate in best.items():
        print(f"{label:18} {rate:12,.0f} lines/s  {rate * 81 / 1e6:7.1f} MB/s")
    ratio = best["runner script"] / best["raw (yes | head)"]
    print(f"{'script / raw':18} {ratio:12.0%}")


if __name__ == "__main__":
    main()
