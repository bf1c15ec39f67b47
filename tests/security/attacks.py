"""A job that attacks the server it runs on, and the checks that it failed.

Each attempt prints ``BREACH <name>`` when it worked and ``HELD <name>`` when it did not;
what an attempt cannot tell from inside (a write that only reached a private copy) the
test checks from outside as well.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from actors.backends.local.sandbox import probe_sandbox
from conveyor.v1 import common_pb2, pipeline_pb2
from rpc import tokens
from rpc.client import Client

# What a job plants in the database when it can write it: a token of the first user
# (the instance admin), whose secret the attacker then knows.
PLANTED_TOKEN = "cvy_" + "planted" * 6
# The hash is computed by the job: the script (stored with the pipeline) holds no copy
# of what the test looks for in the database.
PLANT = f"""
import hashlib, sqlite3, sys
db = sqlite3.connect(sys.argv[1])
digest = hashlib.sha256({PLANTED_TOKEN!r}.encode()).hexdigest()
db.execute("INSERT INTO api_tokens (user_id, name, token_hash, created_at) "
           "VALUES (1, 'planted', ?, '2024-01-01 00:00:00')", (digest,))
db.commit()
"""


@dataclass(frozen=True)
class Target:
    """What the attacker knows of the server (paths and ids are no secret)."""

    db: Path  # the SQLite database file
    workdir: Path  # the local backend's work directory (every job's directory is in it)
    server_pid: int
    secret: str  # a value in the server's environment the job must not learn
    victim: Path | None = None  # another job's running workspace, with secret.txt in it


# Judged by the job: it learnt or reached something.
ATTEMPTS = ("read-db", "list-workdir", "read-other-workspace", "see-server-process",
            "read-server-environ", "secret-in-any-environ", "secret-in-own-env",
            "signal-server", "read-server-home")
# Judged from outside: a write that worked may only have reached the job's private /tmp
# (the directories above its own are made there), so the host's files are looked at.
WRITES = ("write-db", "plant-token", "write-beside-db", "write-other-workspace")
DB_MARK = b"PWNED-BY-A-JOB"  # what write-db appends (spelt apart in the script)


# Succeeds when the directory shows an entry that does not lead to the job's own HOME.
LIST_OTHERS = (
    'for e in "$1"/* "$1"/.[!.]*; do [ -e "$e" ] || continue; '
    'case "$HOME/" in "$e"/*) ;; *) exit 0 ;; esac; done; exit 1'
)


def attack_script(target: Target) -> str:
    """A POSIX shell step that tries every attempt in `ATTEMPTS` and `WRITES`."""
    q = shlex.quote
    db, work, pid, secret = q(str(target.db)), q(str(target.workdir)), target.server_pid, q(
        target.secret)
    victim = q(str(target.victim)) if target.victim else "/nonexistent-victim"
    home = q(str(Path.home()))
    plant = q(PLANT)
    return f"""set +e
try() {{
  name=$1; shift
  if "$@" >/dev/null 2>&1; then echo "BREACH $name"; else echo "HELD $name"; fi
}}
write() {{ name=$1; shift; "$@" >/dev/null 2>&1; echo "TRIED $name"; }}
try read-db cat {db}
write write-db sh -c 'printf "PWNED-%s" BY-A-JOB >> "$1"' - {db}
write plant-token python3 -c {plant} {db}
write write-beside-db sh -c 'echo pwned > "$1"' - "$(dirname {db})/pwned"
try list-workdir sh -c '{LIST_OTHERS}' - {work}
try read-other-workspace cat {victim}/secret.txt
write write-other-workspace sh -c 'echo pwned > "$1/pwned"' - {victim}
try see-server-process test -e /proc/{pid}/cmdline
try read-server-environ sh -c 'grep -q -a -F "$1" /proc/{pid}/environ' - {secret}
try secret-in-any-environ sh -c 'cat /proc/[0-9]*/environ | grep -q -a -F "$1"' - {secret}
try secret-in-own-env sh -c 'env | grep -q -F "$1"' - {secret}
try signal-server kill -0 {pid}
try read-server-home ls -A {home}
"""


def outcomes(lines: list[str]) -> dict[str, str]:
    """{attempt: "BREACH" | "HELD" | "TRIED"} from the attacker's log (then the
    victim's, where "WRITTEN" is a breach)."""
    out = {}
    for line in lines:
        word, _, name = line.partition(" ")
        if word in ("BREACH", "HELD", "TRIED"):
            out[name] = word
        elif word == "WRITTEN":
            out[name] = "BREACH"
    return out


def assert_all_held(lines: list[str], target: Target) -> None:
    """``lines``: the attacker's log, then the victim's."""
    seen = outcomes(lines)
    assert set(seen) == {*ATTEMPTS, *WRITES}, lines
    breaches = [name for name, word in seen.items() if word == "BREACH"]
    files = [target.db, target.db.with_name(target.db.name + "-wal")]
    data = b"".join(path.read_bytes() for path in files if path.exists())
    if DB_MARK in data:
        breaches.append("write-db")
    if tokens.token_hash(PLANTED_TOKEN).encode() in data:
        breaches.append("plant-token")
    if (target.db.parent / "pwned").exists():
        breaches.append("write-beside-db")
    assert not breaches, f"the job got through: {sorted(breaches)}\n" + "\n".join(lines)


def start(client: Client, name: str, script: str) -> common_pb2.Build:
    """A build of a new pipeline ``name`` whose one job runs ``script``."""
    workflow = json.dumps({"jobs": {name: {"steps": [{"run": script}]}}})
    client.pipelines.CreatePipeline(
        pipeline_pb2.CreatePipelineRequest(name=name, workflow_yaml=workflow), timeout=10)
    return client.pipelines.StartPipelineBuild(
        pipeline_pb2.StartPipelineBuildRequest(pipeline=name), timeout=10).build


def finish(client: Client, build_id: int) -> common_pb2.Build:
    last = None
    for message in client.pipelines.WatchBuild(
            pipeline_pb2.WatchBuildRequest(build_id=build_id), timeout=120):
        last = message.build
    assert last is not None
    return last


def log(client: Client, build_id: int, until: str | None = None) -> list[str]:
    """The build's log lines; with ``until``, followed live up to that line."""
    lines: list[str] = []
    call = client.pipelines.StreamBuildLogs(pipeline_pb2.StreamBuildLogsRequest(
        build_id=build_id, follow=until is not None), timeout=120)
    for message in call:
        lines += [line.text for line in message.lines]
        if until is not None and until in lines:
            call.cancel()
            break
    return lines


# Its workspace goes with it: the victim itself reports whether the attacker wrote there.
VICTIM_STEP = """echo "another user's secret" > secret.txt
echo "victim ready"
while [ ! -e release ]; do sleep 0.05; done
if [ -e pwned ]; then echo "WRITTEN write-other-workspace"; fi
"""


def require_sandbox(tmp_path: Path) -> None:
    """Skip loudly where bubblewrap cannot sandbox jobs — fail under CI=true, where
    .ci/run installs it."""
    missing = [tool for tool in ("bwrap", "python3") if shutil.which(tool) is None]
    message = f"{', '.join(missing)} not installed" if missing else ""
    if not missing:
        sandbox, note = probe_sandbox(tmp_path / ".probe")
        message = "" if sandbox is not None else note
    if not message:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"the job sandbox cannot run here: {message} (CI=true: it is required)")
    pytest.skip(f"!!! SKIPPED: the job sandbox cannot run here: {message}")
