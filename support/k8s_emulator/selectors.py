"""Label and field selectors, parsed as the apiserver parses them.

Label selectors: ``k=v``, ``k==v``, ``k!=v``, ``k in (a,b)``, ``k notin (a,b)``, ``k``,
``!k``, comma-separated (all must hold). Field selectors: ``path=v``, ``path==v``,
``path!=v`` on the few fields the apiserver supports for pods and jobs.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any


class SelectorError(ValueError):
    """A selector the apiserver would reject (answered with 400 BadRequest)."""


@dataclass(frozen=True)
class Requirement:
    """One clause of a label selector."""

    key: str
    op: str  # one of "=", "!=", "in", "notin", "exists", "!exists"
    values: frozenset[str] = frozenset()

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        if self.op == "exists":
            return present
        if self.op == "!exists":
            return not present
        if self.op in ("=", "in"):
            return present and labels[self.key] in self.values
        # "!=" and "notin" match objects that lack the key, as in Kubernetes.
        return not present or labels[self.key] not in self.values


_SET_RE = re.compile(r"^\s*(?P<key>[^\s!=,()]+)\s+(?P<op>in|notin)\s*\((?P<vals>[^()]*)\)\s*$")
_CMP_RE = re.compile(r"^\s*(?P<key>[^\s!=,()]+)\s*(?P<op>==|=|!=)\s*(?P<val>[^\s!=,()]*)\s*$")
_EXISTS_RE = re.compile(r"^\s*(?P<neg>!?)\s*(?P<key>[^\s!=,()]+)\s*$")


def _split_top_level(text: str) -> list[str]:
    """Split on commas that are not inside parentheses."""
    parts: list[str] = []
    depth = 0
    current: list[str] = []
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth < 0:
                raise SelectorError(f"unbalanced ')' in selector {text!r}")
        if ch == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    if depth != 0:
        raise SelectorError(f"unbalanced '(' in selector {text!r}")
    parts.append("".join(current))
    return parts


def parse_label_selector(text: str | None) -> list[Requirement]:
    """Parse a label selector string; an empty or missing selector matches everything."""
    if not text or not text.strip():
        return []
    reqs: list[Requirement] = []
    for clause in _split_top_level(text):
        if not clause.strip():
            raise SelectorError(f"empty clause in label selector {text!r}")
        if m := _SET_RE.match(clause):
            vals = frozenset(v.strip() for v in m["vals"].split(",") if v.strip())
            reqs.append(Requirement(m["key"], m["op"], vals))
        elif m := _CMP_RE.match(clause):
            op = "!=" if m["op"] == "!=" else "="
            reqs.append(Requirement(m["key"], op, frozenset({m["val"]})))
        elif m := _EXISTS_RE.match(clause):
            reqs.append(Requirement(m["key"], "!exists" if m["neg"] else "exists"))
        else:
            raise SelectorError(f"unable to parse requirement {clause.strip()!r} in {text!r}")
    return reqs


def labels_match(reqs: list[Requirement], obj: Mapping[str, Any]) -> bool:
    """True when the object's labels satisfy every requirement."""
    labels = obj.get("metadata", {}).get("labels") or {}
    return all(r.matches(labels) for r in reqs)


def _get(path: tuple[str, ...]) -> Callable[[Mapping[str, Any]], str]:
    def read(obj: Mapping[str, Any]) -> str:
        cur: Any = obj
        for part in path:
            cur = cur.get(part) if isinstance(cur, Mapping) else None
        return "" if cur is None else str(cur)

    return read


# The fields the apiserver accepts in field selectors for each resource (a subset).
SUPPORTED_FIELDS: dict[str, dict[str, Callable[[Mapping[str, Any]], str]]] = {
    "pods": {
        "metadata.name": _get(("metadata", "name")),
        "metadata.namespace": _get(("metadata", "namespace")),
        "status.phase": _get(("status", "phase")),
        "spec.nodeName": _get(("spec", "nodeName")),
        "spec.restartPolicy": _get(("spec", "restartPolicy")),
    },
    "jobs": {
        "metadata.name": _get(("metadata", "name")),
        "metadata.namespace": _get(("metadata", "namespace")),
        "status.successful": _get(("status", "succeeded")),
    },
}


@dataclass(frozen=True)
class FieldRequirement:
    """One clause of a field selector."""

    field: str
    equal: bool
    value: str
    read: Callable[[Mapping[str, Any]], str]

    def matches(self, obj: Mapping[str, Any]) -> bool:
        return (self.read(obj) == self.value) == self.equal


def parse_field_selector(text: str | None, resource: str) -> list[FieldRequirement]:
    """Parse a field selector for ``resource`` ("pods" or "jobs")."""
    if not text or not text.strip():
        return []
    fields = SUPPORTED_FIELDS[resource]
    reqs: list[FieldRequirement] = []
    for clause in text.split(","):
        m = re.match(r"^\s*([^\s!=]+)\s*(==|=|!=)\s*(.*?)\s*$", clause)
        if not m:
            raise SelectorError(f"invalid field selector clause {clause!r} in {text!r}")
        field, op, value = m.groups()
        if field not in fields:
            raise SelectorError(f"field label not supported: {field}")
        reqs.append(FieldRequirement(field, op != "!=", value, fields[field]))
    return reqs


def fields_match(reqs: list[FieldRequirement], obj: Mapping[str, Any]) -> bool:
    """True when the object satisfies every field requirement."""
    return all(r.matches(obj) for r in reqs)
