"""Whom the local backend runs jobs for, and how: chosen once when the server starts.

- Trusted (``conveyor run``, or ``CONVEYOR_LOCAL_TRUSTED=1`` on ``serve``): jobs run as
  the server's user without a sandbox — one person's own jobs on their own machine.
- Otherwise every job runs in the sandbox (actors/backends/local/sandbox.py).
- When the sandbox cannot be set up here (no bwrap, no privileges), an unsandboxed job
  could read the database and act as any user, so jobs run only while the server has a
  single user: with a second one, every job is refused with the reason.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from actors.backends.local.actor import Isolation, probe_isolation
from actors.messages import RunJob
from store.users import user_count

log = logging.getLogger(__name__)

Admission = Callable[[RunJob], str | None]

REFUSED = ("refused: this server has several users and no job sandbox ({why}); the operator "
           "can install bubblewrap, or set CONVEYOR_LOCAL_TRUSTED=1 to trust every user's jobs")


def single_user(why: str, count: Callable[[], int] = user_count) -> Admission:
    """Admits a job only while at most one user exists (asked at each job: users come)."""

    def admit(_run: RunJob) -> str | None:
        return REFUSED.format(why=why) if count() > 1 else None

    return admit


def local_isolation(workdir: Path, trusted: bool) -> tuple[Isolation, Admission | None]:
    """The local backend's isolation and admission, with one line saying which."""
    if trusted:
        isolation = probe_isolation()
        log.info("local backend: jobs are trusted and run unsandboxed as this server's user")
        return isolation, None
    # Private before anything is written in it: jobs' scripts and the sandbox's files.
    workdir.mkdir(parents=True, exist_ok=True, mode=0o700)
    isolation = probe_isolation(workdir / ".sandbox")
    if isolation.sandbox is not None:
        log.info("local backend: every job runs in a %s", isolation.description)
        return isolation, None
    log.warning("local backend: no job sandbox (%s): jobs run only while this server has a "
                "single user; set CONVEYOR_LOCAL_TRUSTED=1 to run every user's jobs "
                "unsandboxed", isolation.unsandboxed)
    return isolation, single_user(isolation.unsandboxed)
