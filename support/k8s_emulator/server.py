"""``Emulator``: the whole emulated control plane on its own event-loop thread, with the
test controls as thread-safe methods."""

from __future__ import annotations

import asyncio
import logging
import shutil
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from aiohttp import web

from actors.backends.local.sandbox import Sandbox, probe_sandbox
from support.k8s_emulator.admin import Control, add_admin_routes
from support.k8s_emulator.controller import JobController
from support.k8s_emulator.faults import DEFAULT_UNSCHEDULABLE, Faults, RequestStats
from support.k8s_emulator.kubelet import Kubelet
from support.k8s_emulator.routes import Api, Settings
from support.k8s_emulator.store import Store

log = logging.getLogger(__name__)
T = TypeVar("T")


class EmulatorApp:
    """The parts of one emulator, wired together; lives on one event loop."""

    def __init__(self, workdir: Path, settings: Settings) -> None:
        loop = asyncio.get_running_loop()
        self.faults = Faults()
        self.stats = RequestStats()
        self.store = Store(settings.history_limit, loop.call_soon)
        self.kubelet = Kubelet(
            self.store,
            self.faults,
            workdir,
            pull_backoff_s=settings.pull_backoff_s,
            grace_cap_s=settings.grace_cap_s,
            sandbox=_pod_sandbox(workdir) if settings.isolate_pods else None,
        )
        self.controller = JobController(self.store, self.kubelet)
        self.api = Api(self.store, self.controller, self.kubelet, self.faults, self.stats, settings)
        self.control = Control(self.store, self.kubelet, self.faults, self.stats)
        self.app = web.Application()
        self.api.add_routes(self.app)
        add_admin_routes(self.app, self.control)
        self.runner = web.AppRunner(
            self.app,
            handle_signals=False,
            shutdown_timeout=1.0,
            handler_cancellation=True,
            access_log=None,
        )

    async def start(self, host: str, port: int) -> str:
        await self.runner.setup()
        site = web.TCPSite(self.runner, host, port)
        await site.start()
        bound_host, bound_port = self.runner.addresses[0][:2]
        return f"http://{bound_host}:{bound_port}"

    async def stop(self) -> None:
        """End streams, kill every pod process, close the server."""
        self.api.stopping = True
        self.store.drop_watches(abrupt=False)
        await self.kubelet.shutdown()
        self.controller.close()
        await self.runner.cleanup()


def _pod_sandbox(workdir: Path) -> Sandbox:
    sandbox, note = probe_sandbox(workdir / ".sandbox")
    if sandbox is None:
        raise RuntimeError(f"isolate_pods: {note}")
    return sandbox


class Emulator:
    """A Kubernetes API emulator for tests; ``start()`` returns its base URL.

    The official client talks to it with ``Configuration(host=url)``. Fault injection and
    statistics are methods here (and HTTP endpoints under ``/_emulator/``)."""

    def __init__(
        self,
        workdir: str | Path | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        settings: Settings | None = None,
    ) -> None:
        self._own_workdir = workdir is None
        self.workdir = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="k8s-emu-"))
        self.host, self.port = host, port
        self.settings = settings or Settings()
        self.url = ""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._app: EmulatorApp | None = None

    def start(self) -> str:
        """Start serving on a thread named ``k8s-emulator``; returns the base URL."""
        if self._thread is not None:
            raise RuntimeError("emulator already started")
        ready = threading.Event()
        failure: list[BaseException] = []
        self._thread = threading.Thread(
            target=self._run, args=(ready, failure), name="k8s-emulator", daemon=True
        )
        self._thread.start()
        ready.wait()
        if failure:
            self._thread.join()
            self._thread = None
            raise RuntimeError(f"emulator failed to start: {failure[0]}") from failure[0]
        return self.url

    def _run(self, ready: threading.Event, failure: list[BaseException]) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            self._app = loop.run_until_complete(self._create())
            self.url = loop.run_until_complete(self._app.start(self.host, self.port))
        except BaseException as exc:
            failure.append(exc)
            ready.set()
            loop.close()
            return
        ready.set()
        try:
            loop.run_forever()
        finally:
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _create(self) -> EmulatorApp:
        self.workdir.mkdir(parents=True, exist_ok=True)
        return EmulatorApp(self.workdir, self.settings)

    def stop(self) -> None:
        """Stop serving, kill every pod process and join the thread."""
        if self._thread is None or self._loop is None or self._app is None:
            return
        try:
            asyncio.run_coroutine_threadsafe(self._app.stop(), self._loop).result(timeout=30)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=30)
            self._thread = None
            if self._own_workdir:
                shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> Emulator:
        self.start()
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        if self._loop is None or self._thread is None:
            raise RuntimeError("emulator is not running")

        async def call() -> T:
            return fn(*args, **kwargs)

        return asyncio.run_coroutine_threadsafe(call(), self._loop).result(timeout=30)

    @property
    def control(self) -> Control:
        if self._app is None:
            raise RuntimeError("emulator is not running")
        return self._app.control

    # -- faults and statistics (thread-safe) -------------------------------------------
    def drop_watches(self, *, abrupt: bool = False) -> int:
        """End every open watch stream; ``abrupt`` cuts the connection mid-stream."""
        return self._call(self.control.drop_watches, abrupt)

    def fail_requests(
        self,
        count: int,
        status: int,
        *,
        method: str = "*",
        path: str = ".*",
        retry_after_s: int = 1,
    ) -> None:
        """Answer the next ``count`` requests matching method and path regex with
        ``status`` (410, 429 with Retry-After, 500 or 503)."""
        self._call(self.control.fail_requests, count, status, method, path, retry_after_s)

    def evict_pod(self, namespace: str, name: str) -> bool:
        """Evict a pod for memory pressure: killed, Failed, reason ``Evicted``."""
        return self._call(self.control.evict_pod, namespace, name)

    def oom_kill(self, namespace: str, name: str, container: str | None = None) -> bool:
        """SIGKILL a pod's running container(s) with reason ``OOMKilled`` (exit 137)."""
        return self._call(self.control.oom_kill, namespace, name, container)

    def set_image_unpullable(self, image: str, unpullable: bool = True) -> None:
        """Pods using ``image`` stay Pending in ErrImagePull/ImagePullBackOff."""
        self._call(self.control.set_image_unpullable, image, unpullable)

    def set_unschedulable(self, selector: str, message: str = DEFAULT_UNSCHEDULABLE) -> None:
        """Pods matching the label selector stay Pending with PodScheduled=False."""
        self._call(self.control.set_unschedulable, selector, message)

    def clear_unschedulable(self) -> None:
        self._call(self.control.clear_unschedulable)

    def clear_faults(self) -> None:
        self._call(self.control.clear_faults)

    def stats(self) -> dict[str, Any]:
        """Request counts by verb and route, watch events and log bytes sent, store size."""
        return self._call(self.control.stats_snapshot)

    def reset_stats(self) -> None:
        self._call(self.control.reset_stats)

    def live_pids(self) -> list[int]:
        """Process ids of the pod containers still running."""
        return self._call(self.control.live_pids)
