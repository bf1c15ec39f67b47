"""The object store: a global resourceVersion counter, a bounded event history, watchers
that see objects enter and leave their selectors, and listeners for the controllers.

Everything here runs on the emulator's event loop; nothing is locked. Stored objects are
never mutated in place (history keeps the versions it recorded), so every change goes
through a deep copy."""

from __future__ import annotations

import asyncio
import functools
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from support.k8s_emulator.objects import RESOURCES, JsonObj, copy_json, expired, new_uid, rfc3339
from support.k8s_emulator.selectors import FieldRequirement, Requirement, fields_match, labels_match


class Conflict(Exception):
    """An object with that name already exists."""


class Expired(Exception):
    """A watch asked for a resourceVersion older than the history holds."""

    def __init__(self, requested: int, oldest: int) -> None:
        super().__init__(f"too old resource version: {requested} ({oldest})")
        self.status = expired(requested, oldest)


@dataclass(frozen=True)
class Event:
    """One change of one object, as recorded in the history."""

    rv: int
    type: str  # ADDED, MODIFIED or DELETED
    resource: str
    obj: JsonObj
    old: JsonObj | None


@dataclass(eq=False)
class Watcher:
    """One open watch: what it selects and the wire events waiting to be sent."""

    resource: str
    namespace: str | None
    labels: list[Requirement]
    fields: list[FieldRequirement]
    queue: asyncio.Queue[JsonObj | None] = field(default_factory=asyncio.Queue)
    abrupt: bool = False  # set when a fault drops the stream without a clean end

    def selects(self, obj: JsonObj | None) -> bool:
        if obj is None:
            return False
        if self.namespace is not None and obj["metadata"].get("namespace") != self.namespace:
            return False
        return labels_match(self.labels, obj) and fields_match(self.fields, obj)

    def offer(self, ev: Event) -> None:
        """Translate a store event into what this watcher sees (or nothing)."""
        if ev.resource != self.resource:
            return
        now_in = ev.type != "DELETED" and self.selects(ev.obj)
        was_in = self.selects(ev.old) if ev.type != "DELETED" else self.selects(ev.obj)
        if ev.type == "ADDED" or (now_in and not was_in):
            kind = "ADDED" if now_in else None
        elif now_in:
            kind = "MODIFIED"
        else:
            kind = "DELETED" if was_in else None
        if kind is not None:
            self.queue.put_nowait({"type": kind, "object": ev.obj})

    def drop(self, *, abrupt: bool) -> None:
        self.abrupt = abrupt
        self.queue.put_nowait(None)


class Store:
    """Jobs and pods by namespace and name, with history and watchers."""

    def __init__(
        self, history_limit: int, schedule: Callable[[Callable[[], None]], object]
    ) -> None:
        # Never "0": a watch from "0" means "from any point", so a list of an empty store
        # must hand out a version a watch can resume from exactly.
        self.rv = 1
        self.compacted_rv = 0  # every event with rv <= this has left the history
        self._objects: dict[str, dict[tuple[str, str], JsonObj]] = {r: {} for r in RESOURCES}
        self._history: deque[Event] = deque()
        self._history_limit = history_limit
        self._schedule = schedule
        self.watchers: set[Watcher] = set()
        self.listeners: list[Callable[[Event], None]] = []
        # (resource, owner uid) -> keys of the objects it owns: the job controller reads
        # a Job's pods on every pod event, which a scan would make O(all pods).
        self._owned: dict[tuple[str, str], set[tuple[str, str]]] = {}

    # -- reads -------------------------------------------------------------------------
    def get(self, resource: str, namespace: str, name: str) -> JsonObj | None:
        """The stored object (do not mutate it; use ``mutate``)."""
        return self._objects[resource].get((namespace, name))

    def query(
        self,
        resource: str,
        namespace: str | None,
        labels: list[Requirement] | None = None,
        fields: list[FieldRequirement] | None = None,
    ) -> list[JsonObj]:
        """Matching objects sorted by namespace and name."""
        out = []
        for (ns, _), obj in sorted(self._objects[resource].items()):
            if namespace is not None and ns != namespace:
                continue
            if labels_match(labels or [], obj) and fields_match(fields or [], obj):
                out.append(obj)
        return out

    def owned_by(self, resource: str, owner_uid: str) -> list[JsonObj]:
        """Objects with an ownerReference to ``owner_uid``, sorted by namespace and name."""
        objects = self._objects[resource]
        return [objects[key] for key in sorted(self._owned.get((resource, owner_uid), ()))]

    def _index_owners(self, resource: str, key: tuple[str, str], obj: JsonObj | None,
                      add: bool) -> None:
        if obj is None:
            return
        for ref in obj["metadata"].get("ownerReferences") or []:
            index = (resource, str(ref.get("uid")))
            if add:
                self._owned.setdefault(index, set()).add(key)
            elif index in self._owned:
                self._owned[index].discard(key)
                if not self._owned[index]:
                    del self._owned[index]

    # -- writes ------------------------------------------------------------------------
    def create(self, resource: str, obj: JsonObj) -> JsonObj:
        """Store a new object, filling uid, resourceVersion and creationTimestamp."""
        obj = copy_json(obj)
        meta = obj["metadata"]
        key = (meta["namespace"], meta["name"])
        if key in self._objects[resource]:
            raise Conflict(meta["name"])
        kind, api_version, _ = RESOURCES[resource]
        obj["kind"], obj["apiVersion"] = kind, api_version
        meta.setdefault("uid", new_uid())
        meta["creationTimestamp"] = rfc3339()
        if resource == "jobs":
            meta["generation"] = 1
        obj.setdefault("status", {})
        return self._commit(resource, "ADDED", obj, None)

    def mutate(
        self, resource: str, namespace: str, name: str, change: Callable[[JsonObj], None]
    ) -> JsonObj | None:
        """Apply ``change`` to a copy; a change that changes nothing records nothing."""
        old = self._objects[resource].get((namespace, name))
        if old is None:
            return None
        new = copy_json(old)
        change(new)
        if new == old:
            return old
        return self._commit(resource, "MODIFIED", new, old)

    def delete(
        self,
        resource: str,
        namespace: str,
        name: str,
        change: Callable[[JsonObj], None] | None = None,
    ) -> JsonObj | None:
        """Remove an object now (after a last ``change``); returns its final version."""
        old = self._objects[resource].get((namespace, name))
        if old is None:
            return None
        final = copy_json(old)
        if change is not None:
            change(final)
        return self._commit(resource, "DELETED", final, old)

    def _commit(self, resource: str, type_: str, obj: JsonObj, old: JsonObj | None) -> JsonObj:
        self.rv += 1
        obj["metadata"]["resourceVersion"] = str(self.rv)
        key = (obj["metadata"]["namespace"], obj["metadata"]["name"])
        self._index_owners(resource, key, old, add=False)
        if type_ == "DELETED":
            del self._objects[resource][key]
        else:
            self._objects[resource][key] = obj
            self._index_owners(resource, key, obj, add=True)
        ev = Event(self.rv, type_, resource, obj, old)
        self._history.append(ev)
        while len(self._history) > self._history_limit:
            self.compacted_rv = self._history.popleft().rv
        for w in self.watchers:
            w.offer(ev)
        for listener in self.listeners:
            self._schedule(functools.partial(listener, ev))
        return obj

    # -- watches -----------------------------------------------------------------------
    def watch(
        self,
        resource: str,
        namespace: str | None,
        labels: list[Requirement],
        fields: list[FieldRequirement],
        since: int | None,
    ) -> Watcher:
        """Open a watcher; ``since=None`` starts with ADDED for every current object."""
        w = Watcher(resource, namespace, labels, fields)
        if since is None:
            for obj in self.query(resource, namespace, labels, fields):
                w.queue.put_nowait({"type": "ADDED", "object": obj})
        else:
            if since < self.compacted_rv:
                raise Expired(since, self.compacted_rv + 1)
            for ev in self._history:
                if ev.rv > since:
                    w.offer(ev)
        self.watchers.add(w)
        return w

    def unwatch(self, w: Watcher) -> None:
        self.watchers.discard(w)

    def drop_watches(self, *, abrupt: bool) -> int:
        """End every open watch stream; returns how many there were."""
        dropped = list(self.watchers)
        for w in dropped:
            w.drop(abrupt=abrupt)
        self.watchers.clear()
        return len(dropped)

    def stats(self) -> dict[str, Any]:
        return {
            "resource_version": self.rv,
            "history": len(self._history),
            "compacted_resource_version": self.compacted_rv,
            "open_watches": len(self.watchers),
            "objects": {r: len(objs) for r, objs in self._objects.items()},
        }
