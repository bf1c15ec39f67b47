"""Rendering of a build for people (pure): the live view, the job table, plain progress
lines and log prefixes.

The live view is built from rich ``Text`` rows that never wrap: each row is cut to the
terminal's width, and the rows chosen fit the height given (a summary line, then every
job when they all fit, else the running and failed jobs and a count of the rest).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from rich.cells import cell_len, set_cell_size
from rich.text import Text

from conveyor.v1 import common_pb2

BUILD_STATUS = {v: k.removeprefix("BUILD_STATUS_") for k, v in common_pb2.BuildStatus.items()}
JOB_STATUS = {v: k.removeprefix("JOB_STATUS_") for k, v in common_pb2.JobStatus.items()}
STEP_STATUS = {v: k.removeprefix("STEP_STATUS_") for k, v in common_pb2.StepStatus.items()}

ICONS = {
    "PENDING": "·", "QUEUED": "◌", "RUNNING": "●", "SUCCEEDED": "✓",
    "FAILED": "✗", "CANCELLED": "⊘", "SKIPPED": "↷", "ERROR": "!",
}
# ANSI colours of the plain tables (`conveyor status`, `builds`); the live view uses STYLES.
COLOURS = {
    "RUNNING": "\x1b[33m", "SUCCEEDED": "\x1b[32m", "FAILED": "\x1b[31m",
    "CANCELLED": "\x1b[35m", "SKIPPED": "\x1b[2m", "ERROR": "\x1b[31m", "QUEUED": "\x1b[36m",
}
RESET = "\x1b[0m"
STYLES = {
    "RUNNING": "yellow", "SUCCEEDED": "green", "FAILED": "red", "CANCELLED": "magenta",
    "SKIPPED": "dim", "ERROR": "red", "QUEUED": "cyan", "PENDING": "dim",
}
# The order of the counts in the summary line.
COUNT_ORDER = ("RUNNING", "QUEUED", "PENDING", "SUCCEEDED", "FAILED", "CANCELLED", "SKIPPED",
               "ERROR")
# Jobs the live view shows first when not every job fits: what runs, and what went wrong.
ATTENTION = ("RUNNING", "FAILED", "ERROR", "CANCELLED")
TERMINAL = ("SUCCEEDED", "FAILED", "CANCELLED", "SKIPPED", "ERROR")
# Prefix widths stop growing here: a longer key is printed whole, just not padded.
MAX_PREFIX_PAD = 32


def job_status(job: common_pb2.Job) -> str:
    return JOB_STATUS.get(job.status, "?")


def build_status(build: common_pb2.Build) -> str:
    return BUILD_STATUS.get(build.status, "?")


def seconds_text(seconds: float) -> str:
    seconds = max(0.0, seconds)
    return f"{seconds:.1f}s" if seconds < 60 else f"{int(seconds // 60)}m{int(seconds % 60):02d}s"


def duration(job: common_pb2.Job | common_pb2.Build, now: float | None = None) -> str:
    if not job.HasField("start_time"):
        return ""
    start = job.start_time.ToMicroseconds() / 1e6
    end = job.finish_time.ToMicroseconds() / 1e6 if job.HasField("finish_time") else (
        now if now is not None else time.time())
    return seconds_text(end - start)


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


def needs_text(job: common_pb2.Job, by_key: dict[str, common_pb2.Job]) -> str:
    """``  ← build, test``: the jobs needed, by id (a matrix's legs are one entry)."""
    names = dict.fromkeys(by_key[k].job_id if k in by_key and by_key[k].job_id else k
                          for k in job.needs)
    return f"  ← {', '.join(names)}" if names else ""


def _reason_worth_showing(status: str, reason: str) -> bool:
    """A reason that says more than the status does ("succeeded" after SUCCEEDED does not,
    "succeeded (log truncated at 64 MiB)" does: a flagged job)."""
    if not reason or status in ("PENDING", "QUEUED", "RUNNING"):
        return False
    said = reason.strip().lower()
    if status == "SUCCEEDED":
        return said not in ("succeeded", "all jobs succeeded or were skipped")
    return said != status.lower()


@dataclass(frozen=True)
class TableStyle:
    colour: bool


def _head(build: common_pb2.Build) -> str:
    status = build_status(build)
    head = f"build #{build.number} of {build.pipeline_name}: {status}"
    if build.reason and status not in ("QUEUED", "RUNNING"):
        head += f" — {build.reason}"
    return head


def job_table(build: common_pb2.Build, style: TableStyle, now: float | None = None) -> list[str]:
    """Every job, indented by DAG depth, with status, duration and needs (`conveyor status`)."""
    lines = [_head(build)]
    level = depths(build.jobs)
    by_key = {job.key: job for job in build.jobs}
    width = max((len(j.name) + 2 * level[j.key] for j in build.jobs), default=10)
    for job in build.jobs:
        st = job_status(job)
        icon = ICONS.get(st, "?")
        label = "  " * level[job.key] + (job.name or job.key)
        needs = needs_text(job, by_key)
        reason = f"  {job.reason}" if _reason_worth_showing(st, job.reason) else ""
        text = f"  {icon} {label:<{width}}  {st:<9} {duration(job, now):>7}{needs}{reason}"
        if style.colour and st in COLOURS:
            text = f"{COLOURS[st]}{text}{RESET}"
        lines.append(text)
    return lines


# -- the live view ---------------------------------------------------------------------
def counts_text(statuses: Iterable[str]) -> str:
    """``3 running · 12 succeeded · 1 failed`` in a fixed order."""
    counted = Counter(statuses)
    order = [*COUNT_ORDER, *sorted(set(counted) - set(COUNT_ORDER))]
    return " · ".join(f"{counted[st]} {st.lower()}" for st in order if counted[st])


def summary(build: common_pb2.Build, now: float | None = None) -> str:
    """One line: which build, its state, how long, and how many jobs are in each state."""
    status = build_status(build)
    parts = [f"build #{build.number} of {build.pipeline_name}: {status}"]
    took = duration(build, now)
    if took:
        parts.append(took)
    if build.jobs:
        parts.append(counts_text(job_status(j) for j in build.jobs))
    text = " · ".join(parts)
    if _reason_worth_showing(status, build.reason):
        text += f" — {build.reason}"
    return text


def _cut(text: Text, width: int) -> Text:
    text.no_wrap = True
    text.overflow = "ellipsis"
    text.truncate(max(1, width), overflow="ellipsis")
    return text


def _row(job: common_pb2.Job, indent: int, label_width: int, width: int, now: float | None,
         by_key: dict[str, common_pb2.Job]) -> Text:
    st = job_status(job)
    label = "  " * indent + (job.name or job.key)
    if cell_len(label) > label_width:
        label = set_cell_size(label, max(1, label_width - 1)) + "…"
    needs = needs_text(job, by_key)
    reason = f"  {job.reason}" if _reason_worth_showing(st, job.reason) else ""
    row = Text(f"  {ICONS.get(st, '?')} ", style=STYLES.get(st, ""))
    row.append(set_cell_size(label, label_width))
    row.append(f"  {st:<9}", style=STYLES.get(st, ""))
    row.append(f" {duration(job, now):>7}")
    row.append(needs, style="dim")
    row.append(reason, style=STYLES.get(st, ""))
    return _cut(row, width)


def live_rows(build: common_pb2.Build, width: int, height: int, now: float | None = None
              ) -> list[Text]:
    """The live view in at most ``height`` rows of at most ``width`` cells each."""
    height = max(1, height)
    rows = [_cut(Text(summary(build, now), style="bold"), width)]
    jobs = list(build.jobs)
    if height == 1 or not jobs:
        return rows
    level = depths(jobs)
    if len(jobs) + 1 <= height:
        shown, hidden = jobs, []
    else:
        room = height - 2  # the summary line and the count of the rest
        shown = [j for j in jobs if job_status(j) in ATTENTION][:room]
        keys = {j.key for j in shown}
        hidden = [j for j in jobs if j.key not in keys]
        if not shown:
            level = {}
    # The fixed columns take 23 cells ("  ● " + "  RUNNING  " + duration); labels get the
    # rest, so the status column stays on screen however long the names are.
    longest = max((cell_len(j.name or j.key) + 2 * level.get(j.key, 0) for j in shown),
                  default=0)
    label_width = max(4, min(longest, width - 23))
    by_key = {j.key: j for j in jobs}
    rows += [_row(j, level.get(j.key, 0), label_width, width, now, by_key) for j in shown]
    if hidden and shown:  # (with none shown, the summary's counts say it all)
        rest = f"  … {len(hidden)} more: {counts_text(job_status(j) for j in hidden)}"
        rows.append(_cut(Text(rest, style="dim"), width))
    return rows


# -- plain output ----------------------------------------------------------------------
def plain_job_line(job: common_pb2.Job, now: float | None = None) -> str:
    """``job test (ubuntu): FAILED in 1.2s — step 'test' failed: exit code 1``."""
    return _plain_line(f"job {job.key}", job_status(job), job, now)


def plain_build_line(build: common_pb2.Build, now: float | None = None) -> str:
    return _plain_line(f"build #{build.number} of {build.pipeline_name}", build_status(build),
                       build, now)


def _plain_line(head: str, st: str, thing: common_pb2.Job | common_pb2.Build,
                now: float | None) -> str:
    text = f"{head}: {st}"
    took = duration(thing, now) if st in TERMINAL else ""
    if took:
        text += f" in {took}"
    if _reason_worth_showing(st, thing.reason):
        text += f" — {thing.reason}"
    return text


# -- log prefixes ----------------------------------------------------------------------
CONTINUED_MARK = " ↩"
"""Ends a piece of a longer line where lines of several jobs are shown prefixed."""


def shown_text(line: common_pb2.LogLine) -> str:
    """A log line for a prefixed view: a piece of a longer line says it goes on."""
    return f"{line.text}{CONTINUED_MARK}" if line.continued else line.text


def prefix(job_key: str, width: int) -> str:
    """A log line's prefix: the whole job key (never cut: matrix legs differ at the end),
    padded to ``width`` so that the lines of jobs with shorter keys align."""
    return f"{job_key:<{width}} | "


def prefix_width(keys: Iterable[str]) -> int:
    return min(max((len(k) for k in keys), default=0), MAX_PREFIX_PAD)
