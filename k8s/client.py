"""The Kubernetes API as the backend uses it: raw JSON, typed errors, retries.

Built on the official ``kubernetes`` client, but every call asks for the raw response
(``_preload_content=False``) and decodes JSON itself: the backend reads plain dicts
(``k8s.classify``), which are the same under every client generation (36 and 37 build
different model classes) and cost no model construction per watch event.

Errors become :class:`KubeError` (status, reason, the server's message, Retry-After);
``transient`` says whether retrying can help (5xx, 429, connection errors). ``retrying``
is the tenacity policy the backend wraps its calls in.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import tenacity
import urllib3
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

log = logging.getLogger(__name__)
T = TypeVar("T")

NAMESPACE_FILE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
CONNECT_TIMEOUT_S = 5.0
READ_TIMEOUT_S = 30.0
LOG_READ_TIMEOUT_S = 900.0


class KubeConfigError(ValueError):
    """No usable way to reach a cluster (names what was tried)."""


class KubeError(Exception):
    """A failed Kubernetes API call: HTTP status (0: no response), reason and message."""

    def __init__(self, status: int, reason: str, message: str, *,
                 retry_after_s: float | None = None, operation: str = "") -> None:
        self.status = status
        self.reason = reason
        self.message = message
        self.retry_after_s = retry_after_s
        self.operation = operation
        where = f"{operation}: " if operation else ""
        code = f"HTTP {status} " if status else ""
        super().__init__(f"{where}{code}{reason}: {message}".rstrip(": "))

    @property
    def transient(self) -> bool:
        """Retrying may help: no response, throttled, or a server-side error."""
        return self.status == 0 or self.status == 429 or self.status >= 500

    @property
    def conflict(self) -> bool:
        return self.status == 409

    @property
    def not_found(self) -> bool:
        return self.status == 404


def _retry_after(headers: Any) -> float | None:
    if not headers:
        return None
    raw = headers.get("Retry-After")
    try:
        return max(0.0, float(raw)) if raw is not None else None
    except (TypeError, ValueError):
        return None


def wrap(exc: BaseException, operation: str = "") -> KubeError:
    """The :class:`KubeError` for an exception raised by the client or urllib3."""
    if isinstance(exc, KubeError):
        return exc
    if isinstance(exc, ApiException):
        status = int(exc.status or 0)
        reason, message = str(exc.reason or ""), ""
        try:
            body = json.loads(exc.body) if exc.body else {}
        except (TypeError, ValueError):
            body = {}
        if isinstance(body, dict):
            reason = str(body.get("reason") or reason)
            message = str(body.get("message") or "")
        return KubeError(status, reason or "Error", message or str(exc.body or "")[:500],
                         retry_after_s=_retry_after(exc.headers), operation=operation)
    # urllib3 errors (refused, reset, timed out, protocol) and socket errors: no answer.
    return KubeError(0, type(exc).__name__, str(exc)[:500], operation=operation)


ErrorCounter = Callable[[str, int | str], None]
"""Told of each failed call: its verb as in RBAC (create, get, list, watch, delete) and
the HTTP status, or ``connection`` when no response came back (the metrics count them)."""


def translated(operation: str, fn: Callable[..., T], *args: Any,
               on_error: ErrorCounter | None = None, **kwargs: Any) -> T:
    """Call ``fn``, turning any client, urllib3 or socket error into :class:`KubeError`;
    ``on_error`` is told of each, except the answers the backend expects."""
    try:
        return fn(*args, **kwargs)
    except (ApiException, urllib3.exceptions.HTTPError, OSError) as exc:
        error = wrap(exc, operation)
        # 409 (a Job that exists: adoption) and 404 (already gone) are answers the
        # backend expects, not errors of the API.
        if on_error is not None and error.status not in (404, 409):
            on_error(operation.split(" ", 1)[0], error.status or "connection")
        raise error from exc


# -- retries -------------------------------------------------------------------------------


def _is_transient(exc: BaseException) -> bool:
    return isinstance(exc, KubeError) and exc.transient


def _wait(base_s: float, cap_s: float) -> Callable[[tenacity.RetryCallState], float]:
    def wait(state: tenacity.RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome is not None else None
        backoff = min(cap_s, base_s * 2 ** (state.attempt_number - 1))
        backoff *= 0.5 + random.random() / 2  # jitter: replicas do not retry in lockstep
        if isinstance(exc, KubeError) and exc.retry_after_s is not None:
            return float(max(backoff, min(exc.retry_after_s, cap_s * 4)))
        return float(backoff)

    return wait


def _sleeper(cancel: threading.Event | None) -> Callable[[float], None]:
    def sleep(seconds: float) -> None:
        if cancel is None:
            time.sleep(seconds)
        else:
            cancel.wait(seconds)

    return sleep


def retrying(
    *,
    attempts: int = 8,
    deadline_s: float = 60.0,
    base_s: float = 0.1,
    cap_s: float = 5.0,
    on_retry: Callable[[KubeError], None] | None = None,
    cancel: threading.Event | None = None,
) -> tenacity.Retrying:
    """Retry transient :class:`KubeError` with exponential backoff and jitter, honouring
    Retry-After; give up after ``attempts`` tries or ``deadline_s``, re-raising the last.
    Setting ``cancel`` ends a wait at once and stops retrying (shutdown)."""

    def before_sleep(state: tenacity.RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome is not None else None
        if isinstance(exc, KubeError):
            log.warning("kubernetes %s failed (try %d), retrying: %s",
                        exc.operation or "call", state.attempt_number, exc)
            if on_retry is not None:
                on_retry(exc)

    stop: Any = tenacity.stop_after_attempt(attempts) | tenacity.stop_after_delay(deadline_s)
    if cancel is not None:
        stop = stop | tenacity.stop_when_event_set(cancel)
    return tenacity.Retrying(
        retry=tenacity.retry_if_exception(_is_transient),
        stop=stop,
        wait=_wait(base_s, cap_s),
        sleep=_sleeper(cancel),
        before_sleep=before_sleep,
        reraise=True,
    )


# -- configuration -----------------------------------------------------------------------


def load_configuration(
    *,
    url: str = "",
    kubeconfig: str | None = None,
    context: str | None = None,
    pool_size: int = 32,
) -> Any:
    """A client ``Configuration``: ``url`` (tests, a ``kubectl proxy``), else in-cluster
    (service account), else the kubeconfig (``$KUBECONFIG`` or ``~/.kube/config``).

    urllib3's own retries are off: the backend retries (tenacity) and counts its calls.
    """
    cfg = k8s.Configuration()
    if url:
        cfg.host = url.rstrip("/")
    elif os.environ.get("KUBERNETES_SERVICE_HOST"):
        try:
            k8s_config.load_incluster_config(client_configuration=cfg)  # type: ignore[no-untyped-call]
        except ConfigException as exc:
            raise KubeConfigError(f"in-cluster Kubernetes configuration: {exc}") from exc
    else:
        path = kubeconfig or os.environ.get("KUBECONFIG") or str(Path.home() / ".kube/config")
        try:
            k8s_config.load_kube_config(  # type: ignore[no-untyped-call]
                config_file=path, context=context,
                                        client_configuration=cfg, persist_config=False)
        except (ConfigException, OSError) as exc:
            raise KubeConfigError(
                f"no Kubernetes cluster configured: not in a cluster, and the kubeconfig "
                f"{path!r} is not usable ({exc}); set CONVEYOR_K8S_URL or KUBECONFIG"
            ) from exc
    cfg.retries = False
    cfg.connection_pool_maxsize = pool_size
    return cfg


def in_cluster_namespace() -> str | None:
    """The namespace of the pod this process runs in, when in a cluster."""
    try:
        return NAMESPACE_FILE.read_text().strip() or None
    except OSError:
        return None


# -- the calls -----------------------------------------------------------------------------


@dataclass
class Stream:
    """A streaming response (watch or log) that another thread can cut short. A read
    that breaks (reset, timed out, cut short) raises :class:`KubeError` with status 0,
    like a call that got no answer."""

    response: Any
    operation: str = ""

    def chunks(self) -> Iterator[bytes]:
        try:
            yield from self.response.stream(1 << 16, decode_content=False)
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise wrap(exc, self.operation) from exc

    def lines(self) -> Iterator[bytes]:
        """Whole lines (without the newline); a final unterminated piece last."""
        tail = b""
        for chunk in self.chunks():
            parts = (tail + chunk).split(b"\n")
            tail = parts.pop()
            yield from parts
        if tail:
            yield tail

    def close(self) -> None:
        """Unblock a reader on another thread and release the connection."""
        # RuntimeError / ValueError: the connection is already back in the pool, or was
        # never one that can be shut down: nothing is blocked on it.
        with contextlib.suppress(AttributeError, OSError, RuntimeError, ValueError):
            self.response.shutdown()
        with contextlib.suppress(AttributeError, OSError, urllib3.exceptions.HTTPError):
            self.response.release_conn()


def _json(response: Any) -> dict[str, Any]:
    try:
        data = response.data
    finally:
        response.release_conn()
    value = json.loads(data)
    if not isinstance(value, dict):
        raise KubeError(0, "BadResponse", f"expected a JSON object, got {str(data)[:200]!r}")
    return value


class KubeApi:
    """The handful of calls a CI backend needs, on one namespace, returning dicts."""

    def __init__(self, configuration: Any, namespace: str, *,
                 on_error: ErrorCounter | None = None) -> None:
        self.namespace = namespace
        self.on_error = on_error
        self.api_client = k8s.ApiClient(configuration)
        self.batch = k8s.BatchV1Api(self.api_client)
        self.core = k8s.CoreV1Api(self.api_client)
        self.timeout = (CONNECT_TIMEOUT_S, READ_TIMEOUT_S)

    def close(self) -> None:
        self.api_client.close()  # type: ignore[no-untyped-call]

    def create_job(self, body: dict[str, Any]) -> dict[str, Any]:
        return _json(translated("create job", self.batch.create_namespaced_job,
                                self.namespace, body, _preload_content=False,
                                _request_timeout=self.timeout, on_error=self.on_error))

    def get_job(self, name: str) -> dict[str, Any] | None:
        """The Job, or ``None`` when it does not exist."""
        try:
            return _json(translated("get job", self.batch.read_namespaced_job, name,
                                    self.namespace, _preload_content=False,
                                    _request_timeout=self.timeout, on_error=self.on_error))
        except KubeError as exc:
            if exc.not_found:
                return None
            raise

    def delete_job(self, name: str) -> bool:
        """Delete the Job and (Background propagation) its pods; False if already gone."""
        try:
            _json(translated("delete job", self.batch.delete_namespaced_job, name,
                             self.namespace, propagation_policy="Background",
                             _preload_content=False, _request_timeout=self.timeout,
                             on_error=self.on_error))
        except KubeError as exc:
            if exc.not_found:
                return False
            raise
        return True

    def list_pods(self, selector: str) -> dict[str, Any]:
        return _json(translated("list pods", self.core.list_namespaced_pod, self.namespace,
                                label_selector=selector, _preload_content=False,
                                _request_timeout=(CONNECT_TIMEOUT_S, 120.0),
                                on_error=self.on_error))

    def watch_pods(self, selector: str, resource_version: str, timeout_s: int) -> Stream:
        """A watch stream from ``resource_version``, ended by the server after
        ``timeout_s``; bookmarks requested so a quiet watch still advances its version."""
        response = translated(
            "watch pods", self.core.list_namespaced_pod, self.namespace,
            label_selector=selector, watch=True, resource_version=resource_version,
            timeout_seconds=timeout_s, allow_watch_bookmarks=True, _preload_content=False,
            _request_timeout=(CONNECT_TIMEOUT_S, timeout_s + 30.0), on_error=self.on_error)
        return Stream(response, "watch pods")

    def follow_log(self, pod: str, container: str) -> Stream:
        """The container's whole log, then what it writes, until it ends."""
        # A job may be silent for long: the read timeout only bounds a dead connection
        # (reading again is safe for the caller); Stream.close() ends it at once.
        response = translated(
            "read log", self.core.read_namespaced_pod_log, pod, self.namespace,
            container=container, follow=True, _preload_content=False,
            _request_timeout=(CONNECT_TIMEOUT_S, LOG_READ_TIMEOUT_S), on_error=self.on_error)
        return Stream(response, "read log")
