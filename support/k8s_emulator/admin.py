"""Test controls of the emulator: fault injection, request statistics and live processes,
offered to the Python API (``Emulator``) and over HTTP under ``/_emulator/`` so an
emulator running as a separate process can be driven the same way."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from support.k8s_emulator.faults import DEFAULT_UNSCHEDULABLE, Faults, RequestStats
from support.k8s_emulator.kubelet import Kubelet
from support.k8s_emulator.selectors import SelectorError
from support.k8s_emulator.store import Store


class Control:
    """The operations behind every fault and statistic; runs on the emulator's loop."""

    def __init__(self, store: Store, kubelet: Kubelet, faults: Faults, stats: RequestStats) -> None:
        self.store, self.kubelet, self.faults, self.stats = store, kubelet, faults, stats

    def drop_watches(self, abrupt: bool = False) -> int:
        """End every open watch now (cleanly, or by cutting the connection)."""
        return self.store.drop_watches(abrupt=abrupt)

    def fail_requests(
        self, count: int, status: int, method: str = "*", path: str = ".*", retry_after_s: int = 1
    ) -> None:
        self.faults.fail_requests(
            count=count, status=status, method=method, path=path, retry_after_s=retry_after_s
        )

    def evict_pod(self, namespace: str, name: str) -> bool:
        return self.kubelet.evict(namespace, name)

    def oom_kill(self, namespace: str, name: str, container: str | None = None) -> bool:
        return self.kubelet.oom_kill(namespace, name, container)

    def set_image_unpullable(self, image: str, unpullable: bool = True) -> None:
        self.faults.set_image_unpullable(image, unpullable)

    def set_unschedulable(self, selector: str, message: str = DEFAULT_UNSCHEDULABLE) -> None:
        self.faults.add_unschedulable(selector, message)

    def clear_unschedulable(self) -> None:
        self.faults.clear_unschedulable()

    def clear_faults(self) -> None:
        self.faults.clear()

    def describe_faults(self) -> dict[str, Any]:
        return self.faults.describe()

    def stats_snapshot(self) -> dict[str, Any]:
        return {
            **self.stats.snapshot(),
            "store": self.store.stats(),
            "live_processes": len(self.kubelet.live_pids()),
        }

    def reset_stats(self) -> None:
        self.stats.reset()

    def live_pids(self) -> list[int]:
        return self.kubelet.live_pids()


async def _args(request: web.Request) -> dict[str, Any]:
    raw = await request.read()
    try:
        body = json.loads(raw) if raw.strip() else {}
    except ValueError as exc:
        raise web.HTTPBadRequest(text=f"body is not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(text="body must be a JSON object")
    return body


def add_admin_routes(app: web.Application, control: Control) -> None:
    """Mount the ``/_emulator/`` endpoints."""

    def endpoint(action: Any, *, pod: bool = False) -> Any:
        async def handler(request: web.Request) -> web.Response:
            args = await _args(request)
            try:
                result = action(**args)
            except (TypeError, ValueError, SelectorError) as exc:
                return web.json_response({"error": str(exc)}, status=400)
            if pod and result is False:
                return web.json_response(
                    {"error": f"no running pod {args.get('namespace')}/{args.get('name')}"},
                    status=404,
                )
            return web.json_response({"ok": True, "result": result})

        return handler

    async def stats(request: web.Request) -> web.Response:
        return web.json_response(control.stats_snapshot())

    async def faults(request: web.Request) -> web.Response:
        return web.json_response(control.describe_faults())

    async def pids(request: web.Request) -> web.Response:
        return web.json_response({"pids": control.live_pids()})

    prefix = "/_emulator"
    r = app.router
    r.add_post(f"{prefix}/faults/drop-watches", endpoint(control.drop_watches))
    r.add_post(f"{prefix}/faults/fail-requests", endpoint(control.fail_requests))
    r.add_post(f"{prefix}/faults/evict", endpoint(control.evict_pod, pod=True))
    r.add_post(f"{prefix}/faults/oom-kill", endpoint(control.oom_kill, pod=True))
    r.add_post(f"{prefix}/faults/image-unpullable", endpoint(control.set_image_unpullable))
    r.add_post(f"{prefix}/faults/unschedulable", endpoint(control.set_unschedulable))
    r.add_delete(f"{prefix}/faults/unschedulable", endpoint(control.clear_unschedulable))
    r.add_delete(f"{prefix}/faults", endpoint(control.clear_faults))
    r.add_get(f"{prefix}/faults", faults)
    r.add_get(f"{prefix}/stats", stats)
    r.add_delete(f"{prefix}/stats", endpoint(control.reset_stats))
    r.add_get(f"{prefix}/processes", pids)
