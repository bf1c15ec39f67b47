"""Job backends: where a job's script runs, behind the one protocol the engine relies on.

The engine (supervisor, queue, build, job and log actors, in ``actors/``) imports no
backend: the runtime picks a ``Backend`` and the supervisor starts, and after a crash
restarts, its actor as the service ``backend`` (``Services.backend``). A backend's actor:

- takes ``RunJob`` (start the job; a repeated ``RunJob`` with the same ``name`` re-attaches
  to it, never starts it twice) and ``StopJob`` (cancel it);
- tells the job's actor (``RunJob.reply_to``) ``JobLaunched`` once it runs, a
  ``StepEventSeen`` per step marker in its output, and last ``JobExited`` once the job
  ended and its output reached the log actor. It may tell ``ExitKnown`` before that, when
  the end is known but the output is still draining (Kubernetes), having first told
  ``RunJob.release_to`` the ``JobFinished`` that lets the dependents start;
- tells the log actor (``Services.log``) the job's output as ``AppendLines``, having
  taken its cost from ``Services.gate``;
- answers ``running_jobs()``, and ``describe()``/``ping()`` as every ConveyorActor.

``local/`` runs each job as a process on this host; ``kubernetes/`` as a Kubernetes Job.
Engine tests that need no real process use the fake in ``support/fake_backend.py``.
"""

from __future__ import annotations

from typing import Any, Protocol

import pykka

from actors.base import FailureHook
from actors.services import Services


class Backend(Protocol):
    @property
    def name(self) -> str:
        """What ``RuntimeInfo`` reports: ``local``, ``kubernetes``."""
        ...

    @property
    def adopts(self) -> bool:
        """Whether it re-attaches to a job started by a dead executor (a Kubernetes Job
        outlives it) rather than running it again (local processes die with it)."""
        ...

    def workspace(self, handle: str) -> str:
        """The absolute workspace path the steps of the job ``handle`` (``RunJob.name``)
        see: ``github.workspace``, equal to their $GITHUB_WORKSPACE."""
        ...

    def start(self, services: Services, on_crash: FailureHook) -> pykka.ActorRef[Any]:
        """Start the backend's actor; called again for each restart after a crash."""
        ...
