"""The JobActors a build starts ahead of their needs (or, for its first jobs, at once but
off its own thread), and the launches they prepare.

Starting an actor costs a thread start (milliseconds under load); a burst of finishing
jobs would pay it in series between each need's end and its dependent's launch. So a
BuildActor has the actors of a running job's dependents started, idle, by a launcher
thread, and each may render its launch ahead for the needs context it expects. State
for the BuildActor's thread only, except ``_start_ahead`` (on the launcher's).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pykka

from actors.base import tell_safely
from actors.launcher import Launcher
from actors.messages import LaunchPrepared, Warmed, WarmFailed

if TYPE_CHECKING:
    from actors.build_actor import BuildActor
    from actors.job_actor import JobActor

# Idle JobActors per build at most (threads: cheap while idle, not free).
WARM_LIMIT = 32

StartActor = Callable[[], "pykka.ActorRef[JobActor]"]


class WarmJobs:
    def __init__(self, name: str, limit: int = WARM_LIMIT) -> None:
        self.limit = limit
        self.idle: dict[str, pykka.ActorRef[JobActor]] = {}  # waiting for LaunchJob
        self.starting: set[str] = set()  # asked of the launcher, not arrived yet
        self.prepared: dict[str, LaunchPrepared] = {}  # launches the idle actors rendered
        self.launcher = Launcher(name)

    def start(self) -> None:
        self.launcher.start()

    def stop(self) -> None:
        self.launcher.stop()
        for key in list(self.idle):
            self.cool(key)

    def request(self, key: str, start: StartActor, build: pykka.ActorRef[BuildActor]) -> bool:
        """Have ``key``'s actor started and told to ``build`` as ``Warmed``; False when
        it is idle or starting already, or the limit is reached."""
        if key in self.idle or key in self.starting or \
                len(self.idle) + len(self.starting) >= self.limit:
            return False
        self.starting.add(key)
        self.launcher.submit(lambda: _start_ahead(key, start, build))
        return True

    def started(self, key: str) -> None:
        """The launcher is done with ``key`` (its actor arrived, or failed to start)."""
        self.starting.discard(key)

    def arrived(self, message: Warmed, wanted: bool) -> bool:
        """Keep an actor that arrived, or stop it if its job is no longer ``wanted``."""
        self.started(message.key)
        if not wanted or message.key in self.idle:
            message.ref.stop(block=False)
            return False
        self.idle[message.key] = message.ref
        return True

    def add_prepared(self, message: LaunchPrepared) -> bool:
        if message.key not in self.idle:
            return False
        self.prepared[message.key] = message
        return True

    def take(self, key: str) -> tuple[pykka.ActorRef[JobActor] | None, LaunchPrepared | None]:
        """The job's idle actor and prepared launch, if any, now that it starts."""
        return self.idle.pop(key, None), self.prepared.pop(key, None)

    def cool(self, key: str) -> None:
        """Stop the idle actor of a job that will not run after all."""
        self.prepared.pop(key, None)
        ref = self.idle.pop(key, None)
        if ref is not None:
            ref.stop(block=False)


def _start_ahead(key: str, start: StartActor, build: pykka.ActorRef[BuildActor]) -> None:
    """On the launcher's thread: start the actor, hand it (or the failure) to the build."""
    try:
        ref = start()
    except Exception as exc:
        tell_safely(build, WarmFailed(key, repr(exc)))
        raise
    if not tell_safely(build, Warmed(key, ref)):
        ref.stop(block=False)  # the build is gone
