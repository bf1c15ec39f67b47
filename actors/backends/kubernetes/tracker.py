"""What the K8sActor knows about one job it runs: its Job, its pod, its log, its end.

Plain state, changed only on the actor's thread (the log follower touches the cursor,
one follower at a time). Also the Job's naming for automatic infrastructure retries.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from actors.backends.kubernetes.logs import LogCursor, LogFollower
from actors.messages import RunJob
from k8s.classify import Outcome, PendingProblem
from k8s.manifests import job_name

NONCE_ANNOTATION = "conveyor.dev/nonce"
RETRY_ANNOTATION = "conveyor.dev/infrastructure-retry"
_MAX_NAME = 63


def attempt_job_name(build_id: int, job_key: str, attempt: int, retry: int) -> str:
    """The Job name of an attempt, and of its automatic re-runs after infrastructure
    failures: ``…-a<attempt>`` then ``…-a<attempt>-r<retry>``. The ``-r`` names can never
    collide with a later engine attempt's ``-a<n>`` name."""
    name = job_name(build_id, job_key, attempt)
    if retry == 0:
        return name
    suffix = f"-r{retry}"
    over = len(name) + len(suffix) - _MAX_NAME
    if over > 0:  # shorten the human-readable slug, keep build, hash and attempt
        head, digest, tail = name.rsplit("-", 2)
        prefix = f"cv-{build_id}"
        slug = head[len(prefix):]
        head = prefix + slug[: max(0, len(slug) - over)].rstrip("-")
        name = f"{head}-{digest}-{tail}"
    return name + suffix


@dataclass
class Tracker:
    """One job (``RunJob.name``) from its create request to its ``JobExited``."""

    run: RunJob
    k8s_name: str
    nonce: str
    retry: int = 0
    state: str = "creating"  # creating | pending | running | finishing
    adopted: bool = False
    cancel_reason: str | None = None
    cursor: LogCursor = field(default_factory=LogCursor)
    # The current pod (reset when an infrastructure failure starts a new Job).
    pod: dict[str, Any] | None = None
    pod_uid: str = ""
    follower: LogFollower | None = None
    terminal: threading.Event = field(default_factory=threading.Event)
    outcome: Outcome | None = None
    drained: bool = False
    checking_job: bool = False
    success_told: bool = False  # ExitKnown sent before the log was drained
    problem: PendingProblem | None = None
    problem_since: float = 0.0
    created_at: float = 0.0

    def new_pod_attempt(self, k8s_name: str) -> None:
        """Forget the failed pod: the next Job of the same job attempt starts clean."""
        self.k8s_name = k8s_name
        self.retry += 1
        self.state = "creating"
        self.adopted = False
        self.pod, self.pod_uid, self.follower = None, "", None
        self.terminal = threading.Event()
        self.outcome, self.drained, self.checking_job = None, False, False
        self.problem, self.problem_since = None, 0.0
