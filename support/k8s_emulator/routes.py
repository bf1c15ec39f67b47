"""The Kubernetes API routes the emulator serves (batch/v1 jobs, v1 pods, pods/log),
plus the middleware that counts requests and answers injected request faults."""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from aiohttp import web

from support.k8s_emulator.controller import JobController
from support.k8s_emulator.faults import FAULT_STATUSES, Faults, RequestStats
from support.k8s_emulator.kubelet import Kubelet
from support.k8s_emulator.logs import LogOptions, stream_log
from support.k8s_emulator.objects import (
    RESOURCES,
    JsonObj,
    already_exists,
    container_names,
    default_pod_spec,
    invalid,
    is_dns_label,
    is_dns_subdomain,
    new_uid,
    not_found,
    now,
    parse_time,
    qos_class,
    random_suffix,
    status_body,
    validate_pod_spec,
)
from support.k8s_emulator.selectors import SelectorError, parse_field_selector, parse_label_selector
from support.k8s_emulator.store import Conflict, Store
from support.k8s_emulator.watch import WatchRequest, serve_watch

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Settings:
    """Timings of the emulated control plane (short defaults suit tests)."""

    history_limit: int = 1000
    bookmark_interval_s: float = 5.0
    default_watch_timeout_s: float = 1800.0
    pull_backoff_s: float = 0.5
    grace_cap_s: float = 2.0
    # Run each container as a pod would be isolated: in the job sandbox
    # (actors/backends/local/sandbox.py), seeing only its own root directory and the
    # host's system directories (its "image"), in a pid namespace of its own. Signals then
    # reach it through bwrap, whose death kills it at once: a pod's grace period is not
    # modelled.
    isolate_pods: bool = False


class BadRequest(Exception):
    """A request the apiserver would answer with 400."""


def _flag(request: web.Request, name: str) -> bool:
    # Client 37 sends "true", 36 and older send "True".
    return request.query.get(name, "").lower() in ("true", "1")


def _json(body: JsonObj, status: int = 200) -> web.Response:
    return web.json_response(body, status=status)


def _error(body: JsonObj) -> web.Response:
    return _json(body, status=int(body["code"]))


def _int_param(request: web.Request, name: str) -> int | None:
    raw = request.query.get(name)
    if raw in (None, ""):
        return None
    try:
        return int(raw)
    except ValueError:
        raise BadRequest(f"{name}: invalid integer {raw!r}") from None


class Api:
    """Route handlers over the store, controller and kubelet."""

    def __init__(
        self,
        store: Store,
        controller: JobController,
        kubelet: Kubelet,
        faults: Faults,
        stats: RequestStats,
        settings: Settings,
    ) -> None:
        self.store, self.controller, self.kubelet = store, controller, kubelet
        self.faults, self.stats, self.settings = faults, stats, settings
        self.stopping = False

    def add_routes(self, app: web.Application) -> None:
        ns_jobs = "/apis/batch/v1/namespaces/{namespace}/jobs"
        ns_pods = "/api/v1/namespaces/{namespace}/pods"
        app.router.add_get(ns_jobs, self.collection("jobs"))
        app.router.add_post(ns_jobs, self.create_job)
        app.router.add_get("/apis/batch/v1/jobs", self.collection("jobs"))
        app.router.add_get(ns_jobs + "/{name}", self.get("jobs"))
        app.router.add_delete(ns_jobs + "/{name}", self.delete_job)
        app.router.add_get(ns_pods, self.collection("pods"))
        app.router.add_post(ns_pods, self.create_pod)
        app.router.add_get("/api/v1/pods", self.collection("pods"))
        app.router.add_get(ns_pods + "/{name}", self.get("pods"))
        app.router.add_delete(ns_pods + "/{name}", self.delete_pod)
        app.router.add_get(ns_pods + "/{name}/log", self.pod_log)
        app.router.add_get("/version", self.version)
        app.middlewares.append(self.middleware)

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith("/_emulator/"):
            return await handler(request)
        route = request.match_info.route.resource
        canonical = route.canonical if route is not None else request.path
        resource = (
            "pods/log"
            if canonical.endswith("/log")
            else ("jobs" if "/jobs" in canonical else "pods")
        )
        verb = {"POST": "create", "DELETE": "delete"}.get(request.method, "get")
        if verb == "get" and "name" not in request.match_info:
            verb = "watch" if _flag(request, "watch") else "list"
        self.stats.count(verb, resource, request.method, canonical)
        rule = self.faults.take_request_fault(request.method, request.path)
        if rule is not None:
            reason, message = FAULT_STATUSES[rule.status]
            resp = _error(status_body(rule.status, reason, message))
            if rule.status == 429:
                resp.headers["Retry-After"] = str(rule.retry_after_s)
            return resp
        try:
            return await handler(request)
        except (BadRequest, SelectorError) as exc:
            return _error(status_body(400, "BadRequest", str(exc)))
        except web.HTTPNotFound:
            return _error(
                status_body(404, "NotFound", "the server could not find the requested resource")
            )
        except web.HTTPMethodNotAllowed:
            return _error(
                status_body(
                    405,
                    "MethodNotAllowed",
                    "the server does not allow this method on the requested resource",
                )
            )

    async def version(self, request: web.Request) -> web.Response:
        return _json(
            {
                "major": "1",
                "minor": "37",
                "gitVersion": "v1.37.0-conveyor-emulator",
                "platform": "linux/amd64",
            }
        )

    # -- reads -------------------------------------------------------------------------
    def get(self, resource: str) -> Handler:
        async def handler(request: web.Request) -> web.StreamResponse:
            ns, name = request.match_info["namespace"], request.match_info["name"]
            obj = self.store.get(resource, ns, name)
            return _json(obj) if obj is not None else _error(not_found(resource, name))

        return handler

    def collection(self, resource: str) -> Handler:
        async def handler(request: web.Request) -> web.StreamResponse:
            ns = request.match_info.get("namespace")
            labels = parse_label_selector(request.query.get("labelSelector"))
            fields = parse_field_selector(request.query.get("fieldSelector"), resource)
            if _flag(request, "watch"):
                rv = request.query.get("resourceVersion", "")
                since = None if rv in ("", "0") else _int_param(request, "resourceVersion")
                timeout = _int_param(request, "timeoutSeconds")
                spec = WatchRequest(
                    resource,
                    ns,
                    labels,
                    fields,
                    since,
                    float(timeout) if timeout else self.settings.default_watch_timeout_s,
                    _flag(request, "allowWatchBookmarks"),
                )
                return await serve_watch(
                    request,
                    self.store,
                    spec,
                    stats=self.stats,
                    bookmark_interval_s=self.settings.bookmark_interval_s,
                    stopping=lambda: self.stopping,
                )
            items = self.store.query(resource, ns, labels, fields)
            meta: JsonObj = {"resourceVersion": str(self.store.rv)}
            start = request.query.get("continue")
            if start:
                after = json.loads(base64.urlsafe_b64decode(start.encode()))
                items = [
                    o
                    for o in items
                    if (o["metadata"]["namespace"], o["metadata"]["name"]) > tuple(after)
                ]
            limit = _int_param(request, "limit")
            if limit and len(items) > limit:
                last = items[limit - 1]["metadata"]
                token = json.dumps([last["namespace"], last["name"]]).encode()
                meta["continue"] = base64.urlsafe_b64encode(token).decode()
                meta["remainingItemCount"] = len(items) - limit
                items = items[:limit]
            kind, api_version, _ = RESOURCES[resource]
            return _json(
                {"kind": f"{kind}List", "apiVersion": api_version, "metadata": meta, "items": items}
            )

        return handler

    # -- writes ------------------------------------------------------------------------
    async def _body(self, request: web.Request, *, required: bool) -> JsonObj:
        raw = await request.read()  # Content-Type is ignored: client 37 sends none
        if not raw.strip():
            if required:
                raise BadRequest("the request body is empty")
            return {}
        try:
            body = json.loads(raw)
        except ValueError as exc:
            raise BadRequest(f"the request body is not JSON: {exc}") from None
        if not isinstance(body, dict):
            raise BadRequest("the request body must be a JSON object")
        return body

    def _prepare(self, request: web.Request, resource: str, body: JsonObj) -> JsonObj:
        ns = request.match_info["namespace"]
        obj = copy.deepcopy(body)
        meta = obj.setdefault("metadata", {})
        if not isinstance(meta, dict):
            raise BadRequest("metadata must be an object")
        if meta.get("namespace", ns) != ns:
            raise BadRequest(
                "the namespace of the provided object does not match the "
                "namespace sent on the request"
            )
        for key in ("uid", "resourceVersion", "creationTimestamp", "deletionTimestamp"):
            meta.pop(key, None)
        meta["namespace"] = ns
        meta["uid"] = new_uid()
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = str(meta["generateName"])[:58] + random_suffix()
        obj["status"] = {}
        return obj

    async def create_job(self, request: web.Request) -> web.StreamResponse:
        job = self._prepare(request, "jobs", await self._body(request, required=True))
        meta, name = job["metadata"], str(job["metadata"].get("name", ""))
        causes: list[tuple[str, str]] = []
        if not is_dns_label(name):
            causes.append(
                (
                    "metadata.name",
                    f"Invalid value: {name!r}: must be a lowercase "
                    "RFC 1123 label of at most 63 characters",
                )
            )
        spec = job.get("spec")
        template = spec.get("template") if isinstance(spec, dict) else None
        if not isinstance(template, dict):
            causes.append(("spec.template", "Required value"))
        else:
            pod_spec = template.get("spec")
            causes += validate_pod_spec(pod_spec, "spec.template.spec")
            if isinstance(pod_spec, dict) and pod_spec.get("restartPolicy") not in (
                "Never",
                "OnFailure",
            ):
                causes.append(
                    (
                        "spec.template.spec.restartPolicy",
                        'Required value: valid values: "OnFailure", "Never"',
                    )
                )
        if causes:
            return _error(invalid("jobs", name, causes))
        assert isinstance(spec, dict) and isinstance(template, dict)
        for key, value in (
            ("backoffLimit", 6),
            ("completions", 1),
            ("parallelism", 1),
            ("completionMode", "NonIndexed"),
            ("suspend", False),
            ("podReplacementPolicy", "TerminatingOrFailed"),
            ("manualSelector", False),
        ):
            spec.setdefault(key, value)
        uid = meta["uid"]
        tracking = {
            "batch.kubernetes.io/controller-uid": uid,
            "batch.kubernetes.io/job-name": name,
            "controller-uid": uid,
            "job-name": name,
        }
        spec["selector"] = {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}
        tmeta = template.setdefault("metadata", {})
        tmeta["labels"] = {**(tmeta.get("labels") or {}), **tracking}
        meta["labels"] = {**tracking, **(meta.get("labels") or {})}
        template["spec"] = default_pod_spec(template["spec"])
        try:
            return _json(self.store.create("jobs", job), status=201)
        except Conflict:
            return _error(already_exists("jobs", name))

    async def create_pod(self, request: web.Request) -> web.StreamResponse:
        pod = self._prepare(request, "pods", await self._body(request, required=True))
        name = str(pod["metadata"].get("name", ""))
        causes = [] if is_dns_subdomain(name) else [("metadata.name", "Invalid value")]
        causes += validate_pod_spec(pod.get("spec"), "spec")
        if causes:
            return _error(invalid("pods", name, causes))
        pod["spec"] = default_pod_spec(pod["spec"])
        pod["status"] = {"phase": "Pending", "qosClass": qos_class(pod["spec"])}
        try:
            return _json(self.store.create("pods", pod), status=201)
        except Conflict:
            return _error(already_exists("pods", name))

    async def _delete_options(self, request: web.Request) -> tuple[str | None, int | None]:
        body: dict[str, Any] = await self._body(request, required=False)
        policy = request.query.get("propagationPolicy") or body.get("propagationPolicy")
        if policy is None and body.get("orphanDependents") is False:
            policy = "Background"
        if policy not in (None, "Orphan", "Background", "Foreground"):
            raise BadRequest(f"propagationPolicy: unsupported value {policy!r}")
        grace = _int_param(request, "gracePeriodSeconds")
        if grace is None and body.get("gracePeriodSeconds") is not None:
            grace = int(body["gracePeriodSeconds"])
        return policy, grace

    async def delete_job(self, request: web.Request) -> web.StreamResponse:
        ns, name = request.match_info["namespace"], request.match_info["name"]
        policy, _ = await self._delete_options(request)
        result = self.controller.delete_job(ns, name, policy)
        return _json(result) if result is not None else _error(not_found("jobs", name))

    async def delete_pod(self, request: web.Request) -> web.StreamResponse:
        ns, name = request.match_info["namespace"], request.match_info["name"]
        _, grace = await self._delete_options(request)
        pod = self.kubelet.request_delete(ns, name, grace)
        # The Pod itself, as the apiserver answers (client 37 cannot parse a Status here).
        return _json(pod) if pod is not None else _error(not_found("pods", name))

    # -- logs --------------------------------------------------------------------------
    async def pod_log(self, request: web.Request) -> web.StreamResponse:
        ns, name = request.match_info["namespace"], request.match_info["name"]
        pod = self.store.get("pods", ns, name)
        if pod is None:
            return _error(not_found("pods", name))
        names = container_names(pod)
        container = request.query.get("container") or (names[0] if len(names) == 1 else "")
        if not container:
            raise BadRequest(
                f"a container name must be specified for pod {name}, "
                f"choose one of: [{' '.join(names)}]"
            )
        if container not in names:
            raise BadRequest(f"container {container} is not valid for pod {name}")
        if _flag(request, "previous"):
            raise BadRequest(
                f'previous terminated container "{container}" in pod "{name}" not found'
            )
        log = self.kubelet.log_for(ns, name, container)
        if log is None:
            waiting: JsonObj = next(
                (
                    s["state"].get("waiting", {})
                    for s in pod["status"].get("containerStatuses") or []
                    if s["name"] == container
                ),
                {},
            )
            why = {
                "ErrImagePull": "image can't be pulled",
                "ImagePullBackOff": "trying and failing to pull image",
            }.get(waiting.get("reason", ""), waiting.get("reason") or "ContainerCreating")
            raise BadRequest(f'container "{container}" in pod "{name}" is waiting to start: {why}')
        since_s = _int_param(request, "sinceSeconds")
        since_time = request.query.get("sinceTime")
        try:
            since = parse_time(since_time) if since_time else None
        except ValueError:
            raise BadRequest(f"sinceTime: invalid RFC 3339 time {since_time!r}") from None
        if since_s is not None:
            since = now() - timedelta(seconds=since_s)
        opts = LogOptions(
            follow=_flag(request, "follow"),
            timestamps=_flag(request, "timestamps"),
            since=since,
            tail_lines=_int_param(request, "tailLines"),
            limit_bytes=_int_param(request, "limitBytes"),
        )
        resp = web.StreamResponse(status=200, headers={"Content-Type": "text/plain"})
        resp.enable_chunked_encoding()
        await resp.prepare(request)

        async def write(data: bytes) -> None:
            self.stats.log_bytes += len(data)
            await resp.write(data)

        try:
            await stream_log(log, opts, write, lambda: self.stopping)
            await resp.write_eof()
        except ConnectionResetError:
            pass
        return resp
