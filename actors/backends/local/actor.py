"""LocalActor: the embedded job backend — each job runs as a local process group.

Same protocol as the Kubernetes backend: ``RunJob`` in; ``JobLaunched``, step events and
``JobExited`` told to the job's actor; output lines told to the LogActor. Each process
has a named reader thread that owns its pipe, its deadline and its cancellation.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, assert_never

import pykka
from pykka.typing import ActorMemberMixin, proxy_method

from actors.backends.local.job_env import conveyor_bin_dirs, job_environment
from actors.backends.local.sandbox import SANDBOX_PATH, Sandbox, probe_sandbox
from actors.backends.local.sandbox import command as sandbox_command
from actors.base import ActorThread, ConveyorActor, FailureHook, tell_safely
from actors.logbatch import line_cost
from actors.messages import (
    AppendLines,
    BackendMessage,
    JobExited,
    JobLaunched,
    RunJob,
    StepEventSeen,
    StopJob,
)
from actors.services import Services
from observability import trace
from workflow.markers import MarkerError, OutputReader, Segment

log = logging.getLogger(__name__)

KILL_GRACE_S = 5.0
READ_SIZE = 1 << 16
# Jobs write files as a login shell would, whatever mask the server keeps for its own.
JOB_UMASK = 0o022


def describe_exit(code: int) -> str:
    if code >= 128 + 1 and code <= 128 + 64:
        try:
            return f"exit code {code} (killed by {signal.Signals(code - 128).name})"
        except ValueError:
            pass
    return f"exit code {code}"


class _Process:
    """One running job: its process group and the thread that reads its output."""

    def __init__(self, actor: LocalActor, run: RunJob, workdir: Path) -> None:
        self.actor = actor
        self.run = run
        self.workdir = workdir
        self.cancel_reason: str | None = None
        self.cancel_at: float | None = None
        self.sent_lines = False  # a local job always starts a fresh log (new attempt row)
        self.proc: subprocess.Popen[bytes] | None = None
        self.thread = ActorThread(f"local-job-{run.name}", self._loop)

    def cancel(self, reason: str) -> None:
        if self.cancel_reason is None:
            self.cancel_reason = reason
            self.cancel_at = time.monotonic()
            self._signal(signal.SIGTERM)

    def _signal(self, sig: signal.Signals) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            script = _namespace_init(self.proc.pid) if self.actor.isolation.pid_namespace else None
            if sig == signal.SIGTERM and script is not None:
                # The script (init of the job's pid namespace) handles TERM: it cancels the
                # running step and still runs `always()` steps. Signalling the whole group
                # would kill `unshare`, whose death SIGKILLs the namespace at once.
                os.kill(script, sig)
            else:
                os.killpg(self.proc.pid, sig)

    def _spawn(self) -> subprocess.Popen[bytes]:
        isolation = self.actor.isolation
        sandbox = isolation.sandbox
        # Resolved as the shell resolves $PWD: github.workspace must equal it.
        workspace = Path(workspace_path(self.actor.workdir, self.run.name))
        workspace.mkdir(parents=True, exist_ok=True)
        script = self.workdir / "job.sh"
        script.write_text(self.run.script, encoding="utf-8")
        # The script's temp files and the steps' go here, removed with the workdir: the
        # script then spends no processes on a temp dir of its own.
        temp = self.workdir / "tmp"
        temp.mkdir(exist_ok=True)
        env = job_environment(
            os.environ, home=str(self.workdir), temp=str(temp), job_env=self.run.env,
            container_env=self.run.container_env,
            sandbox_path=SANDBOX_PATH if sandbox else None,
            sandbox_user=sandbox.user if sandbox else None,
            drop_from_path=self.actor.path_drops,
        )
        if isolation.pid_namespace:
            # The script is init of the job's pid namespace: the kernel kills whatever
            # the job left running when it exits, so the script need not search for it.
            env["CONVEYOR_NO_REAP"] = "1"
        argv = ["/bin/sh", str(script)]
        if sandbox is not None:
            if sandbox.owner is not None:  # the job's own uid must own its directory
                for path in (self.workdir, workspace, temp, script):
                    os.chown(path, *sandbox.owner)
            argv = sandbox_command(sandbox, job_dir=str(self.workdir), cwd=str(workspace),
                                   argv=argv)
        else:
            argv = [*isolation.prefix, *argv]
        return subprocess.Popen(
            argv,
            cwd=workspace,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: kill it and all children
            umask=JOB_UMASK,
        )

    def _loop(self, stop: threading.Event) -> None:
        run = self.run
        refusal = self.actor.admit(run) if self.actor.admit is not None else None
        if refusal is not None:
            tell_safely(run.reply_to, JobExited(None, refusal, infrastructure=True))
            self.actor.finished(run.name)
            return
        trace.mark(run.name, "spawn")
        try:
            self.proc = self._spawn()
        except OSError as exc:
            failed = JobExited(None, f"could not start: {exc}", infrastructure=True)
            tell_safely(run.reply_to, failed)
            self.actor.finished(run.name)
            return
        tell_safely(run.reply_to, JobLaunched(run.name))
        deadline = time.monotonic() + run.timeout_s if run.timeout_s > 0 else None
        timed_out = False
        reader = OutputReader(run.nonce)
        services = self.actor.services
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        while True:
            now = time.monotonic()
            if deadline is not None and now >= deadline and not timed_out:
                timed_out = True
                self.cancel(f"timed out after {_minutes(run.timeout_s)}")
            if self.cancel_at is not None and now - self.cancel_at > KILL_GRACE_S:
                self._signal(signal.SIGKILL)
            if stop.is_set():  # the runtime is going away: do not leave orphans
                self._signal(signal.SIGKILL)
            ready, _, _ = select.select([fd], [], [], 0.1)
            if not ready:
                continue
            data = os.read(fd, READ_SIZE)
            if not data:
                break
            self._deliver(reader.feed(data), services)
        self._deliver(reader.close(), services)
        self.proc.stdout.close()
        code = self.proc.wait()
        trace.mark(run.name, "exit")
        if code < 0:
            code = 128 - code
        if timed_out:
            reason, cancelled = self.cancel_reason or "timed out", False
        elif self.cancel_reason is not None:
            reason, cancelled = self.cancel_reason, True
        else:
            reason, cancelled = ("" if code == 0 else describe_exit(code)), False
        tell_safely(run.reply_to, JobExited(code, reason, cancelled=cancelled))
        # The workspace lives as long as the job (a long-running server would otherwise
        # fill its disk); removed here, after the result is on its way, off every mailbox.
        shutil.rmtree(self.workdir, ignore_errors=True)
        self.actor.finished(run.name)

    def _deliver(self, segments: list[Segment], services: Services) -> None:
        for segment in segments:
            if isinstance(segment, list):
                self._send_lines(segment, services)
            elif isinstance(segment, MarkerError):
                log.error("job %s: %s", self.run.job_key, segment)
            else:
                tell_safely(self.run.reply_to, StepEventSeen(segment))

    def _send_lines(self, lines: list[str], services: Services) -> None:
        cost = line_cost(lines)
        services.gate.acquire(cost)
        message = AppendLines(self.run.build_id, self.run.job_row_id, tuple(lines),
                              fresh=not self.sent_lines)
        self.sent_lines = True
        try:
            services.log.tell(message)
        except pykka.ActorDeadError:
            services.gate.release(cost)
            log.error("log actor is down: %d lines of %s lost", len(lines), self.run.job_key)


@dataclass(frozen=True)
class Isolation:
    """How job processes are kept from the server, and tied to the executor's life.

    ``sandbox``: each job runs in a bubblewrap sandbox (actors/backends/local/sandbox.py) — its own
    files, pid namespace and uid — which also dies with the executor. Without one, a
    job's processes must still not outlive an executor that dies (kill -9): its build is
    taken over and the job run again elsewhere, so a survivor would run it twice.
    ``setpriv --pdeathsig`` kills the job when the thread that started it dies; ``unshare
    --pid --kill-child`` puts all of the job's processes in a pid namespace that the
    kernel tears down with its init — including steps that started their own sessions.
    ``unsandboxed`` says why there is no sandbox, when one was asked for.
    """

    prefix: tuple[str, ...] = ()
    pid_namespace: bool = False
    sandbox: Sandbox | None = None
    unsandboxed: str = ""

    @property
    def description(self) -> str:
        if self.sandbox is not None:
            return self.sandbox.description
        if self.pid_namespace:
            return "pid namespace + parent-death signal"
        return "parent-death signal" if self.prefix else "none (processes may outlive us)"


_DEATHSIG = ("setpriv", "--pdeathsig", "KILL")
_PIDNS = ("unshare", "--pid", "--fork", "--kill-child=SIGKILL", "--mount-proc")


def probe_isolation(sandbox_dir: Path | None = None) -> Isolation:
    """The strongest isolation this machine allows: the sandbox when ``sandbox_dir`` (a
    private directory for its files) is given and it works, else processes tied to us
    (unshare needs CAP_SYS_ADMIN)."""
    unsandboxed = ""
    if sandbox_dir is not None:
        sandbox, note = probe_sandbox(sandbox_dir)
        if sandbox is not None:
            return Isolation(pid_namespace=True, sandbox=sandbox)
        unsandboxed = note
    for prefix, pidns in ((_DEATHSIG + _PIDNS, True), (_DEATHSIG, False)):
        try:
            done = subprocess.run([*prefix, "true"], capture_output=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if done.returncode == 0:
            return Isolation(prefix, pidns, unsandboxed=unsandboxed)
    log.warning("local backend: neither setpriv nor unshare work here; job processes may "
                "outlive a crashed executor")
    return Isolation(unsandboxed=unsandboxed)


def _namespace_init(unshare_pid: int) -> int | None:
    """The host pid of the job's script: the only child of `unshare --fork`."""
    try:
        with open(f"/proc/{unshare_pid}/task/{unshare_pid}/children") as f:
            children = f.read().split()
    except OSError:
        return None
    return int(children[0]) if children else None


def workspace_path(workdir: Path, name: str) -> str:
    """The absolute workspace of the job with backend handle ``name``: its cwd, so the
    shell's $PWD; symlinks resolved as the shell's getcwd() resolves them."""
    return str((workdir / name / "workspace").resolve())


def _minutes(seconds: float) -> str:
    minutes = seconds / 60
    return f"{minutes:g}m" if minutes >= 1 else f"{seconds:g}s"


class LocalActor(ConveyorActor):
    kind = "LocalActor"

    def __init__(self, services: Services, workdir: Path, *, on_crash: FailureHook | None = None,
                 isolation: Isolation | None = None,
                 admit: Callable[[RunJob], str | None] | None = None):
        super().__init__("backend/local", on_crash=on_crash)
        self.services = services
        self.workdir = workdir
        self.isolation = isolation or Isolation()
        # Asked on the job's own thread before it starts: a reason to refuse it, or None.
        self.admit = admit
        self.path_drops = conveyor_bin_dirs()
        self._procs: dict[str, _Process] = {}
        self._lock = threading.Lock()

    def on_start(self) -> None:
        # Private: jobs' scripts and workspaces are nobody else's business on this host.
        self.workdir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.state = f"running (isolation: {self.isolation.description})"

    def on_stop(self) -> None:
        with self._lock:
            procs = list(self._procs.values())
        for proc in procs:
            proc.cancel("executor shutting down")
        for proc in procs:
            proc.thread.stop(timeout=KILL_GRACE_S + 2)

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, BackendMessage):
            self._handle(message)
            return None
        return super().on_receive(message)

    def _handle(self, message: BackendMessage) -> None:
        match message:
            case RunJob():
                self._run(message)
            case StopJob():
                with self._lock:
                    proc = self._procs.get(message.name)
                if proc is not None:
                    proc.cancel(message.reason)
                    self.counters["cancelled"] += 1
            case _:
                assert_never(message)

    def _run(self, run: RunJob) -> None:
        with self._lock:
            if run.name in self._procs:  # a repeated request is adoption, not a second run
                return
            proc = _Process(self, run, self.workdir / run.name)
            self._procs[run.name] = proc
        self.counters["started"] += 1
        proc.thread.start()

    def finished(self, name: str) -> None:
        """Called from a reader thread when its process ended."""
        with self._lock:
            self._procs.pop(name, None)
        self.counters["finished"] += 1

    def running_jobs(self) -> int:
        with self._lock:
            return len(self._procs)


class LocalActorProxy(ActorMemberMixin, pykka.ActorProxy[LocalActor]):
    describe = proxy_method(LocalActor.describe)
    ping = proxy_method(LocalActor.ping)
    running_jobs = proxy_method(LocalActor.running_jobs)
