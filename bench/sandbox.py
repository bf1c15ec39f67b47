"""Fixed per-job cost of the local backend's isolation: a one-step ``run: true`` job's
runner script, started as the local backend starts it under each isolation.

    .venv/bin/python -m bench.sandbox [--runs 200]

Prints ms per job for: no prefix; the unsandboxed prefix (``setpriv --pdeathsig`` +
``unshare --pid``, what `conveyor run` and trusted servers use where allowed); the
bubblewrap sandbox as root (bwrap + setpriv to the job's uid) and with a user namespace
(the sandbox of a server not running as root). Variants run interleaved, so load on the
machine hits them alike.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from actors.backends.local.actor import probe_isolation
from actors.backends.local.sandbox import SANDBOX_PATH, probe_sandbox
from actors.backends.local.sandbox import command as sandbox_command
from workflow.markers import JobFinished, MarkerParser, new_nonce
from workflow.model import JobSpec, Plan, StepSpec
from workflow.script import render_job_script


def _run(argv: list[str], cwd: Path, env: dict[str, str], nonce: str) -> float:
    start = time.perf_counter()
    done = subprocess.run(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, check=False)
    elapsed = time.perf_counter() - start
    parser = MarkerParser(nonce)
    events = [parser.feed(line)[1] for line in done.stdout.decode().splitlines()]
    if done.returncode != 0 or not events or events[-1] != JobFinished(0):
        raise SystemExit(f"{argv[:3]}…: exit code {done.returncode}: {done.stdout!r}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=200)
    args = parser.parse_args()
    job = JobSpec(key="b", job_id="b", name="b", steps=(StepSpec(0, "trivial", run="true"),))
    nonce = new_nonce()
    text = render_job_script(job, Plan("bench", (job,)), {}, nonce)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        count = iter(range(100))

        def job_dir(owner: tuple[int, int] | None = None) -> tuple[Path, dict[str, str]]:
            """A job directory of its own per variant, owned by whom the variant needs."""
            path = root / "work" / f"b1-j{next(count)}-a1"
            (path / "workspace").mkdir(parents=True)
            (path / "tmp").mkdir()
            (path / "job.sh").write_text(text)
            if owner is not None:
                for item in (path, path / "workspace", path / "tmp", path / "job.sh"):
                    os.chown(item, *owner)
            return path, {"PATH": SANDBOX_PATH, "HOME": str(path),
                          "TMPDIR": str(path / "tmp"), "CONVEYOR_TEMP_DIR": str(path / "tmp")}

        variants: list[tuple[str, list[str], Path, dict[str, str]]] = []
        path, env = job_dir()
        variants.append(("no prefix", ["/bin/sh", str(path / "job.sh")], path, env))
        unsandboxed = probe_isolation()
        if unsandboxed.prefix:
            path, env = job_dir()
            if unsandboxed.pid_namespace:
                env["CONVEYOR_NO_REAP"] = "1"
            variants.append((f"unsandboxed ({unsandboxed.description})",
                             [*unsandboxed.prefix, "/bin/sh", str(path / "job.sh")], path, env))
        sandbox, note = probe_sandbox(root / ".sandbox")
        if sandbox is None:
            print(f"no sandbox here: {note}")
        else:
            modes = [sandbox] + ([replace(sandbox, setpriv=None)] if sandbox.setpriv else [])
            for mode in modes:
                path, env = job_dir(mode.owner)
                env["CONVEYOR_NO_REAP"] = "1"
                argv = sandbox_command(mode, job_dir=str(path), cwd=str(path / "workspace"),
                                       argv=["/bin/sh", str(path / "job.sh")])
                variants.append((mode.description, argv, path, env))
        totals = {label: 0.0 for label, *_ in variants}
        for _ in range(args.runs):
            for label, argv, path, env in variants:
                totals[label] += _run(argv, path / "workspace", env, nonce)
    # The reference: what a job cost before the sandbox, where unshare works.
    base_label = variants[1][0] if len(variants) > 1 and unsandboxed.prefix else "no prefix"
    base = totals[base_label]
    for label, total in totals.items():
        ms = total / args.runs * 1000
        print(f"{label:52} {ms:6.2f} ms/job  {(total - base) / args.runs * 1000:+6.2f} ms")
    print(f"(differences against: {base_label}; without a pid namespace the script "
          "searches /proc for what a job left running, hence the cost of 'no prefix')")


if __name__ == "__main__":
    main()
