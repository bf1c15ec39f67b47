"""Fixed per-job cost of a job's runner script: a one-step ``run: true`` job, run as the
local backend runs it (``/bin/sh job.sh``, stdout a pipe read to end of file).

    .venv/bin/python -m bench.script_overhead [--runs 200] [--shell /bin/sh]

Prints ms per job for the script with and without ``CONVEYOR_TEMP_DIR`` and
``CONVEYOR_NO_REAP=1``, next to the references: ``sh -c true`` (one spawn), and the
floor a one-step job cannot go below — the step shell started on a script file as the
runner starts it (``bash -e FILE`` for GitHub's default shell) inside ``sh`` — and the
same in a session of its own (``setsid``), as the runner runs every step. Every
variant runs interleaved with the others, so load on the machine hits them alike.
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import tempfile
import time
from pathlib import Path

from workflow.markers import JobFinished, MarkerParser, new_nonce
from workflow.model import JobSpec, Plan, StepSpec
from workflow.script import render_job_script


def _run(argv: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, bytes]:
    """(seconds from spawn to end of file and exit, output) of one run."""
    start = time.perf_counter()
    done = subprocess.run(
        argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, check=False
    )
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{shlex.join(argv)}: exit code {done.returncode}: {done.stdout!r}")
    return elapsed, done.stdout


def _check(output: bytes, nonce: str) -> None:
    parser = MarkerParser(nonce)
    events = [parser.feed(line)[1] for line in output.decode().splitlines()]
    if events[-1] != JobFinished(0):
        raise SystemExit(f"the job did not end well: {output!r}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--shell", default="/bin/sh", help="split into words")
    args = parser.parse_args()
    shell = shlex.split(args.shell)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        job = JobSpec(key="b", job_id="b", name="b", steps=(StepSpec(0, "trivial", run="true"),))
        nonce = new_nonce()
        script = work / "job.sh"
        script.write_text(render_job_script(job, Plan("bench", (job,)), {}, nonce))
        step = work / "step.sh"
        step.write_text("true\n")
        keep = work / "tmp"
        keep.mkdir()
        base = {k: v for k, v in os.environ.items() if not k.startswith("CONVEYOR_")}
        fast_tmp = {**base, "CONVEYOR_TEMP_DIR": str(keep), "TMPDIR": str(keep)}
        # (label, argv, env, is the runner script)
        variants = [
            ("sh -c true", [*shell, "-c", "true"], base, False),
            ("floor: sh -c 'bash -e FILE'", [*shell, "-c", f"bash -e {step}"], base, False),
            # + what a step's own session costs (setsid is one more exec)
            ("sh -c 'setsid bash -e FILE'", [*shell, "-c", f"setsid bash -e {step}"], base, False),
            ("script", [*shell, str(script)], base, True),
            ("script + TEMP_DIR", [*shell, str(script)], fast_tmp, True),
            ("script + NO_REAP", [*shell, str(script)], {**base, "CONVEYOR_NO_REAP": "1"}, True),
            (
                "script + both",
                [*shell, str(script)],
                {**fast_tmp, "CONVEYOR_NO_REAP": "1"},
                True,
            ),
        ]
        totals = {label: 0.0 for label, *_ in variants}
        for _ in range(args.runs):
            for label, argv, env, is_script in variants:
                elapsed, output = _run(argv, work, env)
                totals[label] += elapsed
                if is_script:
                    _check(output, nonce)
        left = sorted(p.name for p in keep.iterdir())
        leaked = [p.name for p in work.iterdir() if p.name.startswith("conveyor.")]
    reference = totals["sh -c true"]
    for label, total in totals.items():
        ms = total / args.runs * 1000
        print(f"{label:28} {ms:7.2f} ms/job  {total / reference:5.1f}x sh -c true")
    print(f"kept CONVEYOR_TEMP_DIR entries: {left}; temp dirs leaked elsewhere: {leaked}")


if __name__ == "__main__":
    main()
