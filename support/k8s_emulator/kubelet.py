"""The "process kubelet": schedules pods onto one fake node, honours image-pull and
scheduling faults, runs each container's command as a local process and reports
container and pod status the way a kubelet does."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from actors.backends.local.sandbox import SANDBOX_PATH, Sandbox
from actors.backends.local.sandbox import command as sandbox_command
from support.k8s_emulator.expansion import expand
from support.k8s_emulator.faults import Faults
from support.k8s_emulator.logs import LogFile
from support.k8s_emulator.objects import JsonObj, rfc3339, set_condition
from support.k8s_emulator.process import ContainerProcess
from support.k8s_emulator.store import Event, Store

log = logging.getLogger(__name__)

NODE_NAME = "emulator-node"
EVICTION_MESSAGE = "The node was low on resource: memory. "


@dataclass(eq=False)
class PodRun:
    """What the kubelet holds for one pod."""

    namespace: str
    name: str
    uid: str
    root: Path
    containers: dict[str, ContainerProcess] = field(default_factory=dict)
    startup: asyncio.Task[None] | None = None
    reason: str | None = None  # pod-level status reason (Evicted)
    message: str | None = None
    deleting: bool = False

    @property
    def finished(self) -> bool:
        return bool(self.containers) and all(c.done for c in self.containers.values())


def _remap(value: str, paths: tuple[str, ...], fs: Path) -> str:
    """An env value naming a mounted path or the working directory, moved under the
    pod's own root (scripts' literal absolute paths cannot be moved)."""
    for path in paths:
        if path != "/" and (value == path or value.startswith(path.rstrip("/") + "/")):
            return str(fs / value.lstrip("/"))
    return value


def _waiting(container: JsonObj, reason: str, message: str | None = None) -> JsonObj:
    state: JsonObj = {"reason": reason}
    if message:
        state["message"] = message
    return {
        "name": container["name"],
        "image": container["image"],
        "imageID": "",
        "ready": False,
        "restartCount": 0,
        "started": False,
        "state": {"waiting": state},
    }


def _container_status(container: JsonObj, cp: ContainerProcess) -> JsonObj:
    image = container["image"]
    base: JsonObj = {
        "name": container["name"],
        "image": image,
        "imageID": f"emulator://{image}",
        "containerID": f"emulator://{cp.pid or 0}",
        "restartCount": 0,
    }
    if not cp.done:
        return base | {
            "ready": True,
            "started": True,
            "state": {"running": {"startedAt": rfc3339(cp.started_at)}},
        }
    term: JsonObj = {
        "exitCode": cp.exit_code,
        "reason": cp.reason(),
        "startedAt": rfc3339(cp.started_at),
        "finishedAt": rfc3339(cp.finished_at),
        "containerID": base["containerID"],
    }
    if cp.start_error:
        term["message"] = cp.start_error
    return base | {"ready": False, "started": False, "state": {"terminated": term}}


class Kubelet:
    """Runs the pods the store holds; the only owner of their processes."""

    def __init__(
        self,
        store: Store,
        faults: Faults,
        workdir: Path,
        *,
        pull_backoff_s: float,
        grace_cap_s: float,
        sandbox: Sandbox | None = None,
    ) -> None:
        self.store = store
        self.sandbox = sandbox
        self.faults = faults
        self.workdir = workdir
        self.pull_backoff_s = pull_backoff_s
        self.grace_cap_s = grace_cap_s
        self.runs: dict[tuple[str, str], PodRun] = {}
        store.listeners.append(self.on_event)

    # -- lifecycle ---------------------------------------------------------------------
    def on_event(self, ev: Event) -> None:
        if ev.resource != "pods" or ev.type != "ADDED":
            return
        meta = ev.obj["metadata"]
        key = (meta["namespace"], meta["name"])
        current = self.store.get("pods", *key)
        if current is None or current["metadata"]["uid"] != meta["uid"] or key in self.runs:
            return
        root = self.workdir / "pods" / key[0] / f"{key[1]}-{meta['uid'][:8]}"
        run = PodRun(key[0], key[1], meta["uid"], root)
        self.runs[key] = run
        run.startup = asyncio.get_running_loop().create_task(
            self._start(run), name=f"kubelet-start-{key[1]}"
        )

    def _mutate(self, run: PodRun, change: Callable[[JsonObj], None]) -> JsonObj | None:
        return self.store.mutate("pods", run.namespace, run.name, change)

    async def _start(self, run: PodRun) -> None:
        try:
            await self._schedule(run)
            await self._pull_images(run)
            self._run_containers(run)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("kubelet failed to start pod %s/%s", run.namespace, run.name)

    async def _wait_for_faults(self, timeout: float | None) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.faults.changed.wait(), timeout)

    async def _schedule(self, run: PodRun) -> None:
        while True:
            pod = self.store.get("pods", run.namespace, run.name)
            if pod is None:
                return
            message = self.faults.unschedulable_message(pod)
            if message is None:
                break

            def unschedulable(p: JsonObj, message: str = message) -> None:
                set_condition(p["status"], "PodScheduled", "False", "Unschedulable", message)

            self._mutate(run, unschedulable)
            await self._wait_for_faults(None)

        def scheduled(p: JsonObj) -> None:
            p["spec"]["nodeName"] = NODE_NAME
            st = p["status"]
            st.update(hostIP="127.0.0.1", hostIPs=[{"ip": "127.0.0.1"}], startTime=rfc3339())
            set_condition(st, "PodReadyToStartContainers", "False")
            set_condition(st, "Initialized", "True")
            names = " ".join(c["name"] for c in p["spec"]["containers"])
            unready = f"containers with unready status: [{names}]"
            set_condition(st, "Ready", "False", "ContainersNotReady", unready)
            set_condition(st, "ContainersReady", "False", "ContainersNotReady", unready)
            set_condition(st, "PodScheduled", "True")
            st["containerStatuses"] = [
                _waiting(c, "ContainerCreating") for c in p["spec"]["containers"]
            ]

        self._mutate(run, scheduled)

    def _pull_status(self, container: JsonObj, reason: str) -> JsonObj:
        image = container["image"]
        if image not in self.faults.unpullable:
            return _waiting(container, "ContainerCreating")
        if reason == "ErrImagePull":
            message = (
                "rpc error: code = NotFound desc = failed to pull and unpack image "
                f'"{image}": not found'
            )
        else:
            message = f'Back-off pulling image "{image}"'
        return _waiting(container, reason, message)

    async def _pull_images(self, run: PodRun) -> None:
        while True:
            pod = self.store.get("pods", run.namespace, run.name)
            if pod is None:
                return
            containers = pod["spec"]["containers"]
            if not any(c["image"] in self.faults.unpullable for c in containers):
                return
            for reason in ("ErrImagePull", "ImagePullBackOff"):

                def waiting(p: JsonObj, reason: str = reason) -> None:
                    p["status"]["containerStatuses"] = [
                        self._pull_status(c, reason) for c in p["spec"]["containers"]
                    ]

                self._mutate(run, waiting)
                await self._wait_for_faults(self.pull_backoff_s)

    def _run_containers(self, run: PodRun) -> None:
        pod = self.store.get("pods", run.namespace, run.name)
        if pod is None:
            return
        fs = run.root / "root"
        home = fs / "root"
        home.mkdir(parents=True, exist_ok=True)
        for c in pod["spec"]["containers"]:
            mounts = [m["mountPath"] for m in c.get("volumeMounts") or []]
            workdir = c.get("workingDir") or "/"
            for path in [*mounts, workdir]:
                (fs / path.lstrip("/")).mkdir(parents=True, exist_ok=True)

            def remap(value: str, paths: tuple[str, ...] = (*mounts, workdir)) -> str:
                return _remap(value, paths, fs)

            env = {
                "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
                "HOME": str(home),
                "HOSTNAME": run.name,
            }
            declared: dict[str, str] = {}
            for item in c.get("env") or []:
                value = item.get("value")
                ref = ((item.get("valueFrom") or {}).get("fieldRef") or {}).get("fieldPath")
                if value is None and ref in ("metadata.name", "metadata.namespace"):
                    value = pod["metadata"][ref.split(".")[1]]
                if value is not None:
                    declared[item["name"]] = remap(expand(str(value), declared))
            env.update(declared)
            argv = [
                expand(str(a), declared)
                for a in [*(c.get("command") or []), *(c.get("args") or [])]
            ]
            if not argv:
                argv = [
                    "/emulator: the image's entrypoint is unknown; give the container a command"
                ]
            elif self.sandbox is not None:
                argv = self._isolated(argv, fs, fs / workdir.lstrip("/"), env)
            cp = ContainerProcess(
                argv=argv,
                cwd=fs / workdir.lstrip("/"),
                env=env,
                log=LogFile(run.root / "logs" / f"{c['name']}.log"),
                on_done=functools.partial(self._container_done, run),
            )
            run.containers[c["name"]] = cp
            cp.start()
        self._report(run)

    def _isolated(self, argv: list[str], fs: Path, cwd: Path, env: dict[str, str]) -> list[str]:
        """The container's command in the sandbox: the pod's root directory is all of the
        node it sees (the image's PATH, not the emulator's)."""
        assert self.sandbox is not None
        owner = self.sandbox.owner
        if owner is not None:
            for path in [fs, *fs.rglob("*")]:
                os.chown(path, *owner)
        env["PATH"] = SANDBOX_PATH
        return sandbox_command(self.sandbox, job_dir=str(fs), cwd=str(cwd), argv=argv)

    def _report(self, run: PodRun) -> None:
        """Write the containers' current state into the pod's status."""

        def report(p: JsonObj) -> None:
            st = p["status"]
            st["containerStatuses"] = [
                _container_status(c, run.containers[c["name"]]) for c in p["spec"]["containers"]
            ]
            if run.finished:
                failed = any(cp.exit_code != 0 for cp in run.containers.values())
                st["phase"] = "Failed" if failed or run.reason else "Succeeded"
                set_condition(st, "PodReadyToStartContainers", "False")
                set_condition(st, "Ready", "False", "PodCompleted")
                set_condition(st, "ContainersReady", "False", "PodCompleted")
            else:
                st["phase"] = "Running"
                st["podIP"], st["podIPs"] = "127.0.0.1", [{"ip": "127.0.0.1"}]
                set_condition(st, "PodReadyToStartContainers", "True")
                set_condition(st, "Ready", "True")
                set_condition(st, "ContainersReady", "True")
            if run.reason:
                st["reason"], st["message"] = run.reason, run.message
                set_condition(st, "DisruptionTarget", "True", "TerminationByKubelet", run.message)

        self._mutate(run, report)

    def _container_done(self, run: PodRun, _cp: ContainerProcess) -> None:
        self._report(run)
        if run.finished and run.deleting:
            self._remove(run)

    def _remove(self, run: PodRun) -> None:
        self.runs.pop((run.namespace, run.name), None)
        pod = self.store.get("pods", run.namespace, run.name)
        if pod is not None and pod["metadata"]["uid"] == run.uid:
            self.store.delete("pods", run.namespace, run.name)

    # -- requests from the API and from faults -------------------------------------------
    def request_delete(self, namespace: str, name: str, grace_s: int | None) -> JsonObj | None:
        """Delete a pod: running containers get SIGTERM, SIGKILL after the (capped) grace."""
        pod = self.store.get("pods", namespace, name)
        if pod is None:
            return None
        grace = pod["spec"].get("terminationGracePeriodSeconds", 30) if grace_s is None else grace_s
        run = self.runs.get((namespace, name))
        running = run is not None and any(not c.done for c in run.containers.values())

        def mark(p: JsonObj) -> None:
            p["metadata"].setdefault("deletionTimestamp", rfc3339())
            p["metadata"].setdefault("deletionGracePeriodSeconds", grace)

        if run is None or not running:
            if run is not None:
                if run.startup is not None:
                    run.startup.cancel()
                self.runs.pop((namespace, name), None)
            return self.store.delete("pods", namespace, name, mark)
        assert run is not None
        run.deleting = True
        marked = self._mutate(run, mark)
        for cp in run.containers.values():
            cp.signal(signal.SIGTERM if grace > 0 else signal.SIGKILL)
        loop = asyncio.get_running_loop()
        loop.call_later(min(grace, self.grace_cap_s), self._kill, run)
        return marked

    def _kill(self, run: PodRun) -> None:
        for cp in run.containers.values():
            if not cp.done:
                cp.signal(signal.SIGKILL)

    def oom_kill(self, namespace: str, name: str, container: str | None = None) -> bool:
        """SIGKILL a running container as the kernel's OOM killer would (exit 137)."""
        run = self.runs.get((namespace, name))
        if run is None:
            return False
        hit = False
        for cname, cp in run.containers.items():
            if cp.alive and container in (None, cname):
                cp.forced_reason = "OOMKilled"
                cp.signal(signal.SIGKILL)
                hit = True
        return hit

    def evict(self, namespace: str, name: str) -> bool:
        """Node-pressure eviction: containers killed, pod Failed with reason Evicted."""
        run = self.runs.get((namespace, name))
        if run is None:
            return False
        if run.finished:
            return False
        run.reason, run.message = "Evicted", EVICTION_MESSAGE
        if run.containers:
            self._kill(run)
            return True
        if run.startup is not None:
            run.startup.cancel()

        def evicted(p: JsonObj) -> None:
            st = p["status"]
            st.update(phase="Failed", reason=run.reason, message=run.message)
            set_condition(st, "DisruptionTarget", "True", "TerminationByKubelet", run.message)

        self._mutate(run, evicted)
        return True

    def log_for(self, namespace: str, name: str, container: str) -> LogFile | None:
        run = self.runs.get((namespace, name))
        cp = run.containers.get(container) if run else None
        return cp.log if cp else None

    def live_pids(self) -> list[int]:
        return [
            cp.pid
            for run in self.runs.values()
            for cp in run.containers.values()
            if cp.alive and cp.pid is not None
        ]

    async def shutdown(self, timeout_s: float = 5.0) -> None:
        """Kill every container and reap every process."""
        for run in list(self.runs.values()):
            if run.startup is not None:
                run.startup.cancel()
            self._kill(run)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        procs = [cp for run in self.runs.values() for cp in run.containers.values()]
        while any(cp.alive for cp in procs) and loop.time() < deadline:
            await asyncio.sleep(0.02)
        for cp in procs:
            if cp.proc is not None and cp.proc.returncode is None:
                cp.proc.kill()
                cp.proc.wait(timeout=timeout_s)
            cp.close()
