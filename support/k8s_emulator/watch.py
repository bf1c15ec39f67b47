"""Watch streams: chunked newline-delimited JSON events, ``timeoutSeconds``, periodic
BOOKMARK events, the ERROR line for an expired resourceVersion, and dropped streams."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web

from support.k8s_emulator.faults import RequestStats
from support.k8s_emulator.objects import RESOURCES, JsonObj
from support.k8s_emulator.selectors import FieldRequirement, Requirement
from support.k8s_emulator.store import Expired, Store


@dataclass(frozen=True)
class WatchRequest:
    """A parsed watch: what to select, from where, for how long."""

    resource: str
    namespace: str | None
    labels: list[Requirement]
    fields: list[FieldRequirement]
    since: int | None
    timeout_s: float
    bookmarks: bool


def _line(event: JsonObj) -> bytes:
    return json.dumps(event, separators=(",", ":")).encode() + b"\n"


async def _start_stream(request: web.Request) -> web.StreamResponse:
    resp = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
    resp.enable_chunked_encoding()
    await resp.prepare(request)
    return resp


async def serve_watch(
    request: web.Request,
    store: Store,
    spec: WatchRequest,
    *,
    bookmark_interval_s: float,
    stats: RequestStats,
    stopping: Callable[[], bool],
) -> web.StreamResponse:
    """Stream events until the timeout, a dropped-watch fault or emulator shutdown."""
    try:
        watcher = store.watch(spec.resource, spec.namespace, spec.labels, spec.fields, spec.since)
    except Expired as exc:
        # The apiserver answers 200 and puts the 410 in the stream as an ERROR event.
        resp = await _start_stream(request)
        await resp.write(_line({"type": "ERROR", "object": exc.status}))
        await resp.write_eof()
        return resp
    loop = asyncio.get_running_loop()
    deadline = loop.time() + spec.timeout_s
    resp = await _start_stream(request)
    kind, api_version, _ = RESOURCES[spec.resource]
    last_bookmark = loop.time()
    try:
        while not stopping():
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            wait = min(remaining, bookmark_interval_s) if spec.bookmarks else remaining
            try:
                item = await asyncio.wait_for(watcher.queue.get(), timeout=min(wait, 1.0))
            except TimeoutError:
                if spec.bookmarks and loop.time() - last_bookmark >= bookmark_interval_s:
                    bookmark = {
                        "type": "BOOKMARK",
                        "object": {
                            "kind": kind,
                            "apiVersion": api_version,
                            "metadata": {"resourceVersion": str(store.rv)},
                        },
                    }
                    await resp.write(_line(bookmark))
                    last_bookmark = loop.time()
                continue
            batch = [item]
            while not watcher.queue.empty():
                batch.append(watcher.queue.get_nowait())
            if None in batch:
                events = [e for e in batch[: batch.index(None)] if e is not None]
                if events:
                    await resp.write(b"".join(_line(e) for e in events))
                if watcher.abrupt and request.transport is not None:
                    request.transport.abort()
                    return resp
                break
            stats.watch_events += len(batch)
            await resp.write(b"".join(_line(e) for e in batch if e is not None))
    finally:
        store.unwatch(watcher)
    with contextlib.suppress(ConnectionResetError):
        await resp.write_eof()
    return resp
