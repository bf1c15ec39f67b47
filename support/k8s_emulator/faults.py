"""Fault rules the tests switch on, and the request counters benchmarks read.

The kubelet and the HTTP layer consult these; the actions that act on running things
(evicting, OOM-killing, dropping watches) live with what they act on."""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from dataclasses import dataclass
from typing import Any

from support.k8s_emulator.objects import JsonObj
from support.k8s_emulator.selectors import Requirement, labels_match, parse_label_selector

FAULT_STATUSES = {
    410: ("Expired", "The resourceVersion for the provided list is too old."),
    429: ("TooManyRequests", "Too many requests, please try again later."),
    500: ("InternalError", "Internal error occurred: injected by the emulator"),
    503: ("ServiceUnavailable", "The server is currently unable to handle the request"),
}

DEFAULT_UNSCHEDULABLE = (
    "0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 nodes are available: "
    "1 No preemption victims found for incoming pod."
)


@dataclass
class RequestFault:
    """Answer the next ``remaining`` requests matching method and path with ``status``."""

    method: str
    path: re.Pattern[str]
    status: int
    remaining: int
    retry_after_s: int

    def describe(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "path": self.path.pattern,
            "status": self.status,
            "remaining": self.remaining,
        }


@dataclass
class UnschedulableRule:
    selector: str
    requirements: list[Requirement]
    message: str


class Faults:
    """The active fault rules; ``changed`` wakes anything waiting for rules to change."""

    def __init__(self) -> None:
        self.requests: list[RequestFault] = []
        self.unpullable: set[str] = set()
        self.unschedulable: list[UnschedulableRule] = []
        self.changed = asyncio.Event()

    def _notify(self) -> None:
        self.changed.set()
        self.changed = asyncio.Event()

    def fail_requests(
        self,
        *,
        count: int,
        status: int,
        method: str = "*",
        path: str = ".*",
        retry_after_s: int = 1,
    ) -> None:
        """Fail the next ``count`` API requests whose method and path match."""
        if status not in FAULT_STATUSES:
            raise ValueError(f"status must be one of {sorted(FAULT_STATUSES)}, got {status}")
        if count < 1:
            raise ValueError(f"count must be at least 1, got {count}")
        self.requests.append(
            RequestFault(method.upper(), re.compile(path), status, count, retry_after_s)
        )

    def take_request_fault(self, method: str, path: str) -> RequestFault | None:
        """The rule that answers this request, consuming one of its uses."""
        for rule in self.requests:
            if rule.method in ("*", method) and rule.path.search(path):
                rule.remaining -= 1
                if rule.remaining <= 0:
                    self.requests.remove(rule)
                return rule
        return None

    def set_image_unpullable(self, image: str, unpullable: bool = True) -> None:
        if unpullable:
            self.unpullable.add(image)
        else:
            self.unpullable.discard(image)
        self._notify()

    def add_unschedulable(self, selector: str, message: str = DEFAULT_UNSCHEDULABLE) -> None:
        """Pods matching the label selector stay Pending, unschedulable, until cleared."""
        self.unschedulable.append(
            UnschedulableRule(selector, parse_label_selector(selector), message)
        )
        self._notify()

    def clear_unschedulable(self) -> None:
        self.unschedulable.clear()
        self._notify()

    def unschedulable_message(self, pod: JsonObj) -> str | None:
        for rule in self.unschedulable:
            if labels_match(rule.requirements, pod):
                return rule.message
        return None

    def clear(self) -> None:
        self.requests.clear()
        self.unpullable.clear()
        self.unschedulable.clear()
        self._notify()

    def describe(self) -> dict[str, Any]:
        return {
            "requests": [r.describe() for r in self.requests],
            "unpullable_images": sorted(self.unpullable),
            "unschedulable": [
                {"selector": r.selector, "message": r.message} for r in self.unschedulable
            ],
        }


class RequestStats:
    """Requests counted by Kubernetes verb and resource, and by method and route."""

    def __init__(self) -> None:
        self.by_verb: Counter[str] = Counter()
        self.by_route: Counter[str] = Counter()
        self.watch_events = 0
        self.log_bytes = 0

    def count(self, verb: str, resource: str, method: str, route: str) -> None:
        self.by_verb[f"{verb} {resource}"] += 1
        self.by_route[f"{method} {route}"] += 1

    def snapshot(self) -> dict[str, Any]:
        return {
            "total": sum(self.by_route.values()),
            "by_verb": dict(self.by_verb),
            "by_route": dict(self.by_route),
            "watch_events_sent": self.watch_events,
            "log_bytes_sent": self.log_bytes,
        }

    def reset(self) -> None:
        self.by_verb.clear()
        self.by_route.clear()
        self.watch_events = 0
        self.log_bytes = 0
