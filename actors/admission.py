"""Which builds an executor starts, and when: pure rules, no threads, no I/O.

The Supervisor feeds it what happens (a build message arrived, a BuildActor ended, the
reconciler found orphans) and carries out the decisions it returns (start a BuildActor,
acknowledge a duplicate message, give a message back to the broker).

- At most one BuildActor per build: a message for a build that runs here, waits in the
  backlog or waits to be taken over is a duplicate (messages may always be duplicated:
  redelivery after a connection drop, two reconcilers re-publishing), unless it is a
  newer attempt (a retry), which waits for the running attempt's actor to end. A
  BuildActor's end counts only for the run it belongs to.
- Orphans — builds whose owner's lease expired while their jobs ran — go first: they
  are older than anything in the backlog, their users are waiting, and an executor's
  backlog never empties under a long queue. They may exceed ``max_builds`` by
  ``takeover_headroom`` (a dead peer's builds are not new load on the cluster), so a
  takeover never waits for a running build to end.
- New builds start in arrival order while fewer than ``max_builds`` run and no orphan
  waits. Orphans are finite (only the builds of dead executors), so new work is delayed
  by at most their number, never starved.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any


@dataclass(frozen=True)
class Request:
    build_id: int
    attempt: int
    delivery: Any = None  # the broker message to settle once the build is claimed
    takeover: bool = False  # an orphan found by the reconciler, not a message


@dataclass(frozen=True)
class Start:
    """Start a BuildActor for ``request``; its end is reported with ``run``."""

    request: Request
    run: int


@dataclass(frozen=True)
class Duplicate:
    """Acknowledge a message whose build is (or will be) run here already."""

    delivery: Any


@dataclass(frozen=True)
class GiveBack:
    """Return a message to the broker (this executor takes no new builds)."""

    delivery: Any


Decision = Start | Duplicate | GiveBack


@dataclass(frozen=True)
class Running:
    run: int
    attempt: int
    takeover: bool


class Admission:
    def __init__(self, max_builds: int, takeover_headroom: int | None = None) -> None:
        if max_builds < 1:
            raise ValueError(f"max_builds must be at least 1, got {max_builds}")
        headroom = max_builds if takeover_headroom is None else takeover_headroom
        if headroom < 0:
            raise ValueError(f"takeover_headroom must be >= 0, got {headroom}")
        self.max_builds = max_builds
        self.takeover_headroom = headroom
        self.running: dict[int, Running] = {}
        self.backlog: dict[int, Request] = {}  # insertion order = arrival order
        self.orphans: dict[int, Request] = {}  # oldest lease first, as the store lists them
        self.deferred: dict[int, Request] = {}  # retries waiting for the running attempt
        self.accepting = True
        self._runs = 0

    # -- queries ---------------------------------------------------------------------
    @property
    def takeover_limit(self) -> int:
        """How many builds may run at most, taken-over ones included."""
        return self.max_builds + self.takeover_headroom

    def waiting(self) -> int:
        return len(self.backlog) + len(self.orphans) + len(self.deferred)

    # -- events ----------------------------------------------------------------------
    def offer(self, request: Request) -> list[Decision]:
        """A build message arrived."""
        build_id = request.build_id
        running = self.running.get(build_id)
        if running is not None:
            if request.attempt > running.attempt:
                return self._keep_newest(self.deferred, request)
            return _duplicate(request)
        if build_id in self.backlog:
            return self._keep_newest(self.backlog, request)
        out: list[Decision] = []
        orphan = self.orphans.get(build_id)
        if orphan is not None:
            if request.attempt <= orphan.attempt:
                if orphan.delivery is None:  # settled by the takeover's claim
                    self.orphans[build_id] = replace(orphan, delivery=request.delivery)
                    return []
                return _duplicate(request)
            # Stale: the build was finished and retried since it was listed.
            out.extend(_duplicate(self.orphans.pop(build_id)))
        if not self.accepting:
            return out + _give_back(request)
        self.backlog[build_id] = request
        return out + self._pump()

    def orphaned(self, found: Iterable[tuple[int, int]]) -> list[Decision]:
        """The reconciler's list of builds whose lease expired: (build id, attempt),
        oldest first. It replaces the previous one (others took those over meanwhile)."""
        if not self.accepting:
            return []
        orphans: dict[int, Request] = {}
        for build_id, attempt in found:
            if build_id in self.running or build_id in orphans:
                continue  # ours already (a renewal lagged), or listed twice
            # A message for it that waits here is settled by the takeover's claim.
            waiting = self.orphans.pop(build_id, None) or self.backlog.pop(build_id, None)
            delivery = None if waiting is None else waiting.delivery
            orphans[build_id] = Request(build_id, attempt, delivery, takeover=True)
        for stale in self.orphans.values():  # taken over elsewhere, or finished
            if stale.delivery is not None:  # its message decides by claiming, as any other
                self.backlog[stale.build_id] = replace(stale, takeover=False)
        self.orphans = orphans
        return self._pump()

    def ended(self, build_id: int, run: int) -> list[Decision]:
        """The BuildActor of ``run`` ended; a stale or repeated report changes nothing."""
        running = self.running.get(build_id)
        if running is None or running.run != run:
            return []
        del self.running[build_id]
        out: list[Decision] = []
        retry = self.deferred.pop(build_id, None)
        if retry is not None:
            if self.accepting:
                # Delivered before everything in the backlog: it waited only for us.
                self.backlog = {build_id: retry, **self.backlog}
            else:
                out.extend(_give_back(retry))
        out.extend(self._pump())
        return out

    def stop_accepting(self) -> list[Decision]:
        """Graceful shutdown: nothing new starts; waiting messages go back to the broker."""
        self.accepting = False
        out: list[Decision] = []
        for waiting in (self.backlog, self.deferred, self.orphans):
            for request in waiting.values():
                out.extend(_give_back(request))
            waiting.clear()
        return out

    # -- helpers ---------------------------------------------------------------------
    def _keep_newest(self, where: dict[int, Request], request: Request) -> list[Decision]:
        held = where.get(request.build_id)
        if held is None or request.attempt > held.attempt:
            where[request.build_id] = request
            return [] if held is None else _duplicate(held)
        return _duplicate(request)

    def _pump(self) -> list[Decision]:
        out: list[Decision] = []
        while self.orphans and len(self.running) < self.takeover_limit:
            out.append(self._start(self.orphans, next(iter(self.orphans))))
        # Orphans still waiting means takeover_limit >= max_builds builds run: none of
        # the backlog can overtake them.
        while self.accepting and self.backlog and len(self.running) < self.max_builds:
            out.append(self._start(self.backlog, next(iter(self.backlog))))
        return out

    def _start(self, where: dict[int, Request], build_id: int) -> Start:
        request = where.pop(build_id)
        self._runs += 1
        self.running[build_id] = Running(self._runs, request.attempt, request.takeover)
        return Start(request, self._runs)


def _duplicate(request: Request) -> list[Decision]:
    return [] if request.delivery is None else [Duplicate(request.delivery)]


def _give_back(request: Request) -> list[Decision]:
    return [] if request.delivery is None else [GiveBack(request.delivery)]
