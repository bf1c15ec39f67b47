"""Which jobs a retry re-runs (pure): GitHub's "re-run failed jobs".

A retry re-runs every job whose latest attempt failed or was cancelled (or never
finished, when the build ended in ERROR), and every job that depends on one of them,
directly or not: their results were decided by the failure (skipped, or run by
`if: failure()`), so they must be decided again. Everything else keeps its result and
outputs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from workflow.states import JobStatus

_RERUN = frozenset({JobStatus.FAILED, JobStatus.CANCELLED})


@dataclass(frozen=True)
class LatestJob:
    """What the rule needs of a job's latest attempt."""

    key: str
    status: JobStatus
    needs: Sequence[str] = ()


def jobs_to_rerun(latest: Iterable[LatestJob]) -> set[str]:
    """The keys to run again, given the latest attempt of every job of a finished build."""
    jobs = {job.key: job for job in latest}
    dependents: dict[str, list[str]] = {key: [] for key in jobs}
    for job in jobs.values():
        for need in job.needs:
            dependents.setdefault(need, []).append(job.key)
    chosen = {k for k, j in jobs.items() if j.status in _RERUN or not j.status.terminal}
    return _closure(chosen, dependents)


def _closure(start: set[str], dependents: Mapping[str, Sequence[str]]) -> set[str]:
    found = set(start)
    todo = list(start)
    while todo:
        for child in dependents.get(todo.pop(), ()):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found
