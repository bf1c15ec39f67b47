"""One tracing hook for the engine's hot paths, for benchmarks.

The engine marks moments (``mark("conveyor-12-test-1", "create")``); nothing records
them unless a benchmark installs a hook, usually through :func:`recording`. With no
hook, which is always the case outside benchmarks, a mark costs a global read.

Marks in use (subject, event):
- ``build/<id>/<job key>``, ``launch``: a JobActor hands its RunJob to the backend;
- a local job's handle, ``spawn`` / ``exit``: its process starts / has exited;
- a Kubernetes Job's name, ``run`` (the K8sActor takes the RunJob), ``create`` (just
  before the create request), ``succeeded`` (its pod's Succeeded event arrives in the
  watch), ``known`` (its success is told before its log is drained), ``drained`` (its
  log is read), ``exited`` (JobExited is told).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

Mark = tuple[str, str, float]
"""(subject, event, time.monotonic())"""

Hook = Callable[[str, str, float], None]

_hook: Hook | None = None


def tracing() -> bool:
    """Whether a hook is installed: guards marks whose subject costs work to compute."""
    return _hook is not None


def mark(subject: str, event: str) -> None:
    hook = _hook
    if hook is not None:
        hook(subject, event, time.monotonic())


def launch_subject(build_id: int, job_key: str) -> str:
    """The subject of a job's ``launch`` mark."""
    return f"build/{build_id}/{job_key}"


@contextmanager
def recording() -> Iterator[list[Mark]]:
    """Install a hook that appends every mark to the list yielded, until the block ends
    (list.append is atomic: marks from any thread are safe)."""
    global _hook
    if _hook is not None:
        raise RuntimeError("a tracing hook is installed already")
    marks: list[Mark] = []

    def append(subject: str, event: str, at: float) -> None:
        marks.append((subject, event, at))

    _hook = append
    try:
        yield marks
    finally:
        _hook = None
