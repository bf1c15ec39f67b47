"""The one pod watch of a K8sActor: every Conveyor pod in the namespace, one stream.

List, then watch from the list's resourceVersion with a bounded ``timeoutSeconds`` and
bookmarks; when a stream ends, watch again from the last version seen; on 410 Gone list
again (and report pods that vanished meanwhile as deleted); on errors reconnect with
backoff. Events go to ``on_event`` as raw dicts, on this thread: the receiver only
routes them (to its actor's mailbox), so no pod can stall the others.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from typing import Any

from actors.base import ActorThread
from k8s import classify
from k8s.client import KubeApi, KubeError, Stream, retrying
from observability import trace

log = logging.getLogger(__name__)

BACKOFF_BASE_S = 0.2
BACKOFF_CAP_S = 10.0


class Expired(Exception):
    """The watch's resourceVersion is too old (410 Gone): list again."""


class PodWatch:
    """Owns the watch thread. ``on_event(type, pod)`` with type ADDED, MODIFIED or
    DELETED (relists report every listed pod as MODIFIED); ``on_synced()`` after each
    list; ``on_state(text)`` when the watch's health changes."""

    def __init__(
        self,
        api: KubeApi,
        selector: str,
        *,
        on_event: Callable[[str, dict[str, Any]], None],
        on_synced: Callable[[], None],
        on_state: Callable[[str], None] = lambda _s: None,
        timeout_s: int = 300,
    ) -> None:
        self.api = api
        self.selector = selector
        self.on_event, self.on_synced, self.on_state = on_event, on_synced, on_state
        self.timeout_s = timeout_s
        self.resource_version = ""
        self.known: dict[str, dict[str, Any]] = {}  # uid -> last pod seen
        self.stats = {"watch_streams": 0, "watch_restarts": 0, "relists": 0,
                      "watch_errors": 0, "bookmarks": 0, "pod_events": 0}
        self._stream: Stream | None = None
        self._troubled = False  # the last attempt failed: the owner shows it
        self._lock = threading.Lock()
        self.thread = ActorThread("k8s-pod-watch", self._loop)

    def start(self) -> None:
        self.thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self.thread.stop_event.set()
        with self._lock:
            if self._stream is not None:
                self._stream.close()
        self.thread.stop(timeout)

    def _loop(self, stop: threading.Event) -> None:
        delay = BACKOFF_BASE_S
        while not stop.is_set():
            try:
                if not self.resource_version:
                    self._relist(stop)
                self._watch_once(stop)
                delay = BACKOFF_BASE_S
            except Expired:
                log.info("pod watch: resourceVersion %s expired, listing again",
                         self.resource_version)
                self.resource_version = ""
            except (KubeError, OSError, ValueError) as exc:
                if stop.is_set():
                    return
                self.stats["watch_errors"] += 1
                self._troubled = True
                self.on_state(f"watch reconnecting: {exc}")
                log.warning("pod watch failed, reconnecting in %.1fs: %s", delay, exc)
                stop.wait(delay)
                delay = min(BACKOFF_CAP_S, delay * 2)
            if not stop.is_set():
                self.stats["watch_restarts"] += 1

    def _relist(self, stop: threading.Event) -> None:
        retry = retrying(attempts=1_000_000, deadline_s=float("inf"), cap_s=BACKOFF_CAP_S,
                         cancel=stop, on_retry=self._list_failed)
        body = retry(self.api.list_pods, self.selector)
        self.stats["relists"] += 1
        listed: dict[str, dict[str, Any]] = {}
        for item in body.get("items") or []:
            pod = classify.slim_pod(item)
            uid = classify.pod_uid(pod)
            listed[uid] = pod
            self.known[uid] = pod
            self.on_event("MODIFIED", pod)
        for uid in [u for u in self.known if u not in listed]:
            self.on_event("DELETED", self.known.pop(uid))
        self.resource_version = str((body.get("metadata") or {}).get("resourceVersion") or "")
        self.on_synced()

    def _list_failed(self, exc: KubeError) -> None:
        self.stats["watch_errors"] += 1
        self._troubled = True
        self.on_state(f"listing pods failed, retrying: {exc}")

    def _watch_once(self, stop: threading.Event) -> None:
        try:
            stream = self.api.watch_pods(self.selector, self.resource_version, self.timeout_s)
        except KubeError as exc:
            if exc.status == 410:  # some servers answer an expired version with a plain 410
                raise Expired() from exc
            raise
        with self._lock:
            self._stream = stream
        self.stats["watch_streams"] += 1
        if self._troubled:
            self._troubled = False
            self.on_state("running")
        if stop.is_set():
            stream.close()
            return
        try:
            for line in stream.lines():
                if stop.is_set():
                    return
                if line.strip():
                    self._handle(json.loads(line))
        finally:
            with self._lock:
                self._stream = None
            stream.close()

    def _handle(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        obj = event.get("object") or {}
        if kind == "ERROR":
            code = int(obj.get("code") or 0)
            if code == 410:
                raise Expired()
            raise KubeError(code, str(obj.get("reason") or "WatchError"),
                            str(obj.get("message") or ""), operation="watch pods")
        version = (obj.get("metadata") or {}).get("resourceVersion")
        if version:
            self.resource_version = str(version)
        if kind == "BOOKMARK":
            self.stats["bookmarks"] += 1
            return
        self.stats["pod_events"] += 1
        obj = classify.slim_pod(obj)
        uid = classify.pod_uid(obj)
        if kind == "DELETED":
            self.known.pop(uid, None)
        else:
            self.known[uid] = obj
        if trace.tracing() and classify.phase(obj) == "Succeeded":
            trace.mark(classify.job_name_of(obj) or "", "succeeded")
        self.on_event(str(kind), obj)

