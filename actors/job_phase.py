"""Where each job of a build stands as its BuildActor sees it, from the moment it may run
until its JobActor reports it persisted: one phase per job and the moves allowed between
them, in place of a set per phase. Pure: no actors, no threads.

    (may run) ─┬─> QUEUED ───┐
               ├─> STARTING ─┼─> RUNNING ─> (gone: JobPersisted, or the build lets go)
               └─────────────┘
    QUEUED, STARTING ─> (gone: cancelled before it started)

Jobs not yet allowed to run, and jobs decided without a JobActor (skipped), have no
phase; the scheduler (build_state.py) and the warm actors (warm_jobs.py) keep the rest.
"""

from __future__ import annotations

from enum import Enum
from typing import Generic, TypeVar

Ref = TypeVar("Ref")


class Phase(Enum):
    QUEUED = "waiting for a job slot"
    STARTING = "its actor being started off the build's thread; it runs on arrival"
    RUNNING = "its JobActor runs it"


_MOVES: dict[Phase | None, frozenset[Phase]] = {
    None: frozenset({Phase.QUEUED, Phase.STARTING, Phase.RUNNING}),
    Phase.QUEUED: frozenset({Phase.RUNNING}),
    Phase.STARTING: frozenset({Phase.RUNNING}),
    Phase.RUNNING: frozenset(),
}


class IllegalMove(Exception):
    """A move the phases do not allow: a bug in the caller, never a message's doing."""


class JobPhases(Generic[Ref]):
    """Each job's phase, and for a running job the ref of its actor."""

    def __init__(self) -> None:
        self._phases: dict[str, Phase] = {}
        self._refs: dict[str, Ref] = {}

    def of(self, key: str) -> Phase | None:
        return self._phases.get(key)

    def queue(self, key: str) -> None:
        self._move(key, Phase.QUEUED)

    def starting(self, key: str) -> None:
        self._move(key, Phase.STARTING)

    def run(self, key: str, ref: Ref) -> None:
        self._move(key, Phase.RUNNING)
        self._refs[key] = ref

    def ref(self, key: str) -> Ref | None:
        """The actor running ``key``, if it runs."""
        return self._refs.get(key)

    def unstarted(self, key: str) -> bool:
        """Whether ``key`` waits for a slot or for its actor: it can end without one."""
        return self.of(key) in (Phase.QUEUED, Phase.STARTING)

    def cancel_unstarted(self, key: str) -> None:
        if not self.unstarted(key):
            raise IllegalMove(f"job {key!r}: {self._name(key)} cannot end before it starts")
        del self._phases[key]

    def persisted(self, key: str) -> None:
        """The job's actor reported it persisted (a repeated report finds it gone)."""
        if self.of(key) is Phase.RUNNING:
            del self._phases[key]
            del self._refs[key]

    def running(self) -> list[Ref]:
        return list(self._refs.values())

    def clear(self) -> None:
        self._phases.clear()
        self._refs.clear()

    def _move(self, key: str, to: Phase) -> None:
        now = self._phases.get(key)
        if to not in _MOVES[now]:
            raise IllegalMove(f"job {key!r}: {self._name(key)} cannot move to {to.name}")
        self._phases[key] = to

    def _name(self, key: str) -> str:
        now = self._phases.get(key)
        return now.name if now is not None else "no phase"
