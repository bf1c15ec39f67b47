"""Rendering of a build for people: the live job table and plain progress lines (pure)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from conveyor.v1 import common_pb2

BUILD_STATUS = {v: k.removeprefix("BUILD_STATUS_") for k, v in common_pb2.BuildStatus.items()}
JOB_STATUS = {v: k.removeprefix("JOB_STATUS_") for k, v in common_pb2.JobStatus.items()}
STEP_STATUS = {v: k.removeprefix("STEP_STATUS_") for k, v in common_pb2.StepStatus.items()}

ICONS = {
    "PENDING": "·", "QUEUED": "◌", "RUNNING": "●", "SUCCEEDED": "✓",
    "FAILED": "✗", "CANCELLED": "⊘", "SKIPPED": "↷", "ERROR": "!",
}
COLOURS = {
    "RUNNING": "\x1b[33m", "SUCCEEDED": "\x1b[32m", "FAILED": "\x1b[31m",
    "CANCELLED": "\x1b[35m", "SKIPPED": "\x1b[2m", "ERROR": "\x1b[31m", "QUEUED": "\x1b[36m",
}
RESET = "\x1b[0m"


def job_status(job: common_pb2.Job) -> str:
    return JOB_STATUS.get(job.status, "?")


def build_status(build: common_pb2.Build) -> str:
    return BUILD_STATUS.get(build.status, "?")


def duration(job: common_pb2.Job, now: float | None = None) -> str:
    if not job.HasField("start_time"):
        return ""
    start = job.start_time.ToMicroseconds() / 1e6
    end = job.finish_time.ToMicroseconds() / 1e6 if job.HasField("finish_time") else (
        now if now is not None else time.time())
    seconds = max(0.0, end - start)
    return f"{seconds:.1f}s" if seconds < 60 else f"{int(seconds // 60)}m{int(seconds % 60):02d}s"


def depths(jobs: Sequence[common_pb2.Job]) -> dict[str, int]:
    """How deep each job sits in the DAG (0 = no needs), to indent the table by it."""
    by_key = {job.key: job for job in jobs}
    memo: dict[str, int] = {}

    def depth(key: str, seen: frozenset[str] = frozenset()) -> int:
        if key in memo:
            return memo[key]
        job = by_key.get(key)
        if job is None or key in seen:
            return 0
        value = 1 + max((depth(n, seen | {key}) for n in job.needs), default=-1)
        memo[key] = value
        return value

    return {job.key: depth(job.key) for job in jobs}


@dataclass(frozen=True)
class TableStyle:
    colour: bool


def job_table(build: common_pb2.Build, style: TableStyle, now: float | None = None) -> list[str]:
    """The live view's job lines, indented by DAG depth, with status, duration and needs."""
    status = build_status(build)
    head = f"build #{build.number} of {build.pipeline_name}: {status}"
    if build.reason and status not in ("QUEUED", "RUNNING"):
        head += f" — {build.reason}"
    lines = [head]
    level = depths(build.jobs)
    width = max((len(j.name) + 2 * level[j.key] for j in build.jobs), default=10)
    for job in build.jobs:
        st = job_status(job)
        icon = ICONS.get(st, "?")
        label = "  " * level[job.key] + (job.name or job.key)
        needs = f"  ← {', '.join(job.needs)}" if job.needs else ""
        # A succeeded job's reason says more than "succeeded" when it is flagged (a log cap).
        shown = job.reason and st != "RUNNING" and job.reason != "succeeded"
        reason = f"  {job.reason}" if shown else ""
        text = f"  {icon} {label:<{width}}  {st:<9} {duration(job, now):>7}{needs}{reason}"
        if style.colour and st in COLOURS:
            text = f"{COLOURS[st]}{text}{RESET}"
        lines.append(text)
    return lines


CONTINUED_MARK = " ↩"
"""Ends a piece of a longer line where lines of several jobs are shown prefixed."""


def shown_text(line: common_pb2.LogLine) -> str:
    """A log line for a prefixed view: a piece of a longer line says it goes on."""
    return f"{line.text}{CONTINUED_MARK}" if line.continued else line.text


def prefix(job_key: str, width: int) -> str:
    return f"{job_key[:width]:<{width}} | "
