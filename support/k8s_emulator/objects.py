"""Shapes of API objects: timestamps, Status bodies, names and the defaults the
apiserver fills in, so the official client's models always find their required fields."""

from __future__ import annotations

import copy
import datetime as dt
import re
import secrets
import uuid
from typing import Any

JsonObj = dict[str, Any]

# Kubernetes' own alphabet for generated name suffixes (no vowels, no look-alikes).
_SUFFIX_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS1123_SUBDOMAIN = re.compile(
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
)

# Kind, apiVersion and the "resource.group" used in messages, per resource.
RESOURCES: dict[str, tuple[str, str, str]] = {
    "pods": ("Pod", "v1", "pods"),
    "jobs": ("Job", "batch/v1", "jobs.batch"),
}


def copy_json(value: Any) -> Any:
    """A deep copy of JSON data (dicts, lists, scalars): what ``copy.deepcopy`` does for
    it, several times faster (the store copies a whole object on every change)."""
    if isinstance(value, dict):
        return {k: copy_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [copy_json(v) for v in value]
    return value


def now() -> dt.datetime:
    """The current time in UTC."""
    return dt.datetime.now(dt.UTC)


def rfc3339(when: dt.datetime | None = None) -> str:
    """Second-precision RFC 3339, as metadata and status timestamps are serialised."""
    return (when or now()).strftime("%Y-%m-%dT%H:%M:%SZ")


def rfc3339_nano(when: dt.datetime) -> str:
    """Log-line timestamps carry sub-second precision (the client only parses them as text)."""
    return when.strftime("%Y-%m-%dT%H:%M:%S.%f") + "000Z"


def parse_time(text: str) -> dt.datetime:
    """Parse an RFC 3339 timestamp (with ``Z`` or an offset, with or without fraction)."""
    value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def new_uid() -> str:
    return str(uuid.uuid4())


def random_suffix(n: int = 5) -> str:
    return "".join(secrets.choice(_SUFFIX_ALPHABET) for _ in range(n))


def status_body(code: int, reason: str, message: str, details: JsonObj | None = None) -> JsonObj:
    """A ``Status`` object as the apiserver returns with errors."""
    body: JsonObj = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure" if code >= 300 else "Success",
        "message": message,
        "reason": reason,
        "code": code,
    }
    if details is not None:
        body["details"] = details
    return body


def not_found(resource: str, name: str) -> JsonObj:
    group = "batch" if resource == "jobs" else ""
    details: JsonObj = {"name": name, "kind": resource}
    if group:
        details["group"] = group
    return status_body(404, "NotFound", f'{RESOURCES[resource][2]} "{name}" not found', details)


def already_exists(resource: str, name: str) -> JsonObj:
    group = "batch" if resource == "jobs" else ""
    details: JsonObj = {"name": name, "kind": resource}
    if group:
        details["group"] = group
    return status_body(
        409, "AlreadyExists", f'{RESOURCES[resource][2]} "{name}" already exists', details
    )


def invalid(resource: str, name: str, causes: list[tuple[str, str]]) -> JsonObj:
    """422 Invalid with one cause per (field, message)."""
    kind = RESOURCES[resource][0]
    qualified = "Job.batch" if resource == "jobs" else kind
    text = ", ".join(f"{f}: {m}" for f, m in causes)
    return status_body(
        422,
        "Invalid",
        f'{qualified} "{name}" is invalid: {text}',
        {
            "name": name,
            "kind": kind,
            "causes": [
                {"reason": "FieldValueInvalid", "message": m, "field": f} for f, m in causes
            ],
        },
    )


def expired(resource_version: int, oldest: int) -> JsonObj:
    """The 410 Status of a watch started from a compacted resourceVersion."""
    return status_body(410, "Expired", f"too old resource version: {resource_version} ({oldest})")


def is_dns_label(name: str) -> bool:
    return len(name) <= 63 and bool(_DNS1123_LABEL.match(name))


def is_dns_subdomain(name: str) -> bool:
    return len(name) <= 253 and bool(_DNS1123_SUBDOMAIN.match(name))


def _image_pull_policy(image: str) -> str:
    last = image.rsplit("/", 1)[-1]
    if "@" in last:
        return "IfNotPresent"
    tag = last.split(":", 1)[1] if ":" in last else "latest"
    return "Always" if tag == "latest" else "IfNotPresent"


def default_pod_spec(spec: JsonObj) -> JsonObj:
    """Apply the apiserver's pod-spec defaults (a subset) to a copy of ``spec``."""
    spec = copy.deepcopy(spec)
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("securityContext", {})
    spec.setdefault("schedulerName", "default-scheduler")
    for container in spec.get("containers") or []:
        container.setdefault("terminationMessagePath", "/dev/termination-log")
        container.setdefault("terminationMessagePolicy", "File")
        container.setdefault("resources", {})
        if "image" in container:
            container.setdefault("imagePullPolicy", _image_pull_policy(str(container["image"])))
    return spec


def validate_pod_spec(spec: Any, path: str) -> list[tuple[str, str]]:
    """The handful of pod-spec rules the emulator enforces, as (field, message) causes."""
    if not isinstance(spec, dict):
        return [(path, "Required value")]
    causes: list[tuple[str, str]] = []
    containers = spec.get("containers")
    if not isinstance(containers, list) or not containers:
        return [(f"{path}.containers", "Required value")]
    seen: set[str] = set()
    for i, c in enumerate(containers):
        where = f"{path}.containers[{i}]"
        if not isinstance(c, dict):
            causes.append((where, "Invalid value: must be an object"))
            continue
        name = c.get("name")
        if not isinstance(name, str) or not is_dns_label(name):
            causes.append((f"{where}.name", f"Invalid value: {name!r}: a lowercase RFC 1123 label"))
        elif name in seen:
            causes.append((f"{where}.name", f'Duplicate value: "{name}"'))
        else:
            seen.add(name)
        if not c.get("image"):
            causes.append((f"{where}.image", "Required value"))
        for j, env in enumerate(c.get("env") or []):
            if not isinstance(env, dict) or not env.get("name"):
                causes.append((f"{where}.env[{j}].name", "Required value"))
    return causes


def container_names(pod: JsonObj) -> list[str]:
    return [str(c["name"]) for c in pod["spec"]["containers"]]


def qos_class(spec: JsonObj) -> str:
    """Guaranteed, Burstable or BestEffort, from the containers' requests and limits."""
    guaranteed = True
    anything = False
    for c in spec.get("containers") or []:
        res = c.get("resources") or {}
        requests, limits = res.get("requests") or {}, res.get("limits") or {}
        anything = anything or bool(requests or limits)
        for r in ("cpu", "memory"):
            if r not in limits or requests.get(r, limits[r]) != limits[r]:
                guaranteed = False
    if not anything:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"


def set_condition(
    status: JsonObj, type_: str, value: str, reason: str | None = None, message: str | None = None
) -> None:
    """Set a condition, moving lastTransitionTime only when its status changes."""
    conditions: list[JsonObj] = status.setdefault("conditions", [])
    for cond in conditions:
        if cond["type"] == type_:
            if cond["status"] != value:
                cond["lastTransitionTime"] = rfc3339()
            cond["status"] = value
            for key, val in (("reason", reason), ("message", message)):
                if val is None:
                    cond.pop(key, None)
                else:
                    cond[key] = val
            return
    cond = {"type": type_, "status": value, "lastProbeTime": None, "lastTransitionTime": rfc3339()}
    if reason is not None:
        cond["reason"] = reason
    if message is not None:
        cond["message"] = message
    conditions.append(cond)
