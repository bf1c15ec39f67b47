"""The two server streams: a build's logs (StreamBuildLogs) and its state (WatchBuild).

Both wake on the in-process change feed and fall back to polling every ``poll``
seconds, so they also follow builds that an executor in another process is running.
The database is the only source of what is sent: a wake-up is just a hint to look.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace

import workflow
from conveyor.v1 import common_pb2, pipeline_pb2
from rpc import convert
from rpc.build_view import fingerprint, latest_jobs, load_build
from rpc.ports import ChangeFeedApi, StoreApi
from store.errors import NotFound
from store.records import BuildRecord, JobRecord, LogLine
from workflow.errors import WorkflowInvalid

LOG_BATCH = 1000  # lines per StreamBuildLogsResponse at most
# Text per response at most (one line more when it is longer alone): far below every
# client's receive limit, which is 4 MiB unless raised.
LOG_BATCH_BYTES = 1 << 20
# A stored line is at most 64 Ki characters, except in logs stored before lines were
# cut: one of those is sent shortened rather than never.
MAX_SENT_LINE = 1 << 20
POLL_SECONDS = 0.25

IsActive = Callable[[], bool]


def stream_logs(
    db: StoreApi,
    feed: ChangeFeedApi,
    request: pipeline_pb2.StreamBuildLogsRequest,
    is_active: IsActive,
    poll: float = POLL_SECONDS,
) -> Iterator[pipeline_pb2.StreamBuildLogsResponse]:
    """Log lines of one job (``job_key``) or of every job (latest attempt of each key).

    Lines come in order per job, from ``from_line``, without gaps or duplicates. With
    ``follow`` the stream ends once the build (or the named job) is finished and every
    line written before that was sent, or when the client goes away.
    """
    build_id = request.build_id
    since = feed.version(build_id)  # before the first read, so no change is missed
    start = max(request.from_line, 1)
    next_line: dict[int, int] = {}
    drained: set[int] = set()
    key_checked = False
    while is_active():
        # State first, lines second: whatever was written before the build finished
        # is in the database by the time we see it finished.
        build = db.get_build(build_id)
        jobs = latest_jobs(db.list_jobs(build_id))
        if request.job_key:
            jobs = [j for j in jobs if j.key == request.job_key]
            if not jobs and not key_checked:
                _check_job_key(db, build, request.job_key)
                key_checked = True
        finished = build.status.terminal or (
            bool(request.job_key) and bool(jobs) and jobs[0].status.terminal
        )
        for job in jobs:
            if job.id in drained:
                continue
            position = next_line.setdefault(job.id, start)
            done = finished or job.status.terminal
            for batch in _drain(db, job, position, allow_gaps=done):
                next_line[job.id] = batch[-1].number + 1
                yield pipeline_pb2.StreamBuildLogsResponse(
                    lines=[convert.log_line(_bounded(line), job.key) for line in batch]
                )
            if job.status.terminal:
                # Its status was read before its lines: nothing can follow. Skipping it
                # keeps a follower of a wide build from re-reading every finished job.
                drained.add(job.id)
        if not request.follow or finished:
            return
        since = feed.wait(build_id, since, timeout=poll)


def _drain(
    db: StoreApi, job: JobRecord, position: int, *, allow_gaps: bool
) -> Iterator[list[LogLine]]:
    while True:
        lines = db.read_logs([job.id], from_line=position, limit=LOG_BATCH,
                             max_bytes=LOG_BATCH_BYTES)
        batch = _in_order(lines, position, allow_gaps)
        if not batch:
            return
        yield batch
        position = batch[-1].number + 1
        if len(lines) < LOG_BATCH and _most_bytes(lines) < LOG_BATCH_BYTES:
            return  # the read was not cut short: nothing more is stored yet


def _most_bytes(lines: Sequence[LogLine]) -> int:
    """More than the byte budget ``lines`` took of a read (UTF-8 takes 4 bytes a
    character at most; a line costs a few bytes more)."""
    return sum(4 * len(line.text) + 64 for line in lines)


def _bounded(line: LogLine) -> LogLine:
    """``line``, shortened with a note when it could not be sent whole."""
    text = line.text
    if len(text) <= MAX_SENT_LINE // 4 or len(text.encode("utf-8")) <= MAX_SENT_LINE:
        return line
    kept = text.encode("utf-8")[:MAX_SENT_LINE].decode("utf-8", errors="ignore")
    note = f" [conveyor: line shortened, {len(text) - len(kept):,} more characters stored]"
    return replace(line, text=kept + note)


def _in_order(lines: Sequence[LogLine], position: int, allow_gaps: bool) -> list[LogLine]:
    """Lines from ``position`` on; stops before a gap unless the job can no longer fill it."""
    taken: list[LogLine] = []
    expected = position
    for line in sorted(lines, key=lambda line: line.number):
        if line.number < expected:
            continue  # already sent
        if line.number > expected and not allow_gaps:
            break  # a batch still being written: wait for it rather than skip it
        taken.append(line)
        expected = line.number + 1
    return taken


def _check_job_key(db: StoreApi, build: BuildRecord, key: str) -> None:
    """Raise NotFound unless ``key`` is (or will be) a job of the build."""
    keys: list[str] = []
    if not build.status.terminal:
        try:
            plan = workflow.load(db.get_snapshot(build.id), inputs=dict(build.inputs))
            keys = [j.key for j in plan.jobs]
        except WorkflowInvalid:
            keys = []
        if key in keys:
            return
    known = keys or [j.key for j in latest_jobs(db.list_jobs(build.id))]
    listing = ", ".join(repr(k) for k in known) or "none yet"
    raise NotFound(f"build {build.id} has no job {key!r} (jobs: {listing})")


WATCH_MIN_INTERVAL = 0.2


def watch_build(
    db: StoreApi,
    feed: ChangeFeedApi,
    build_id: int,
    is_active: IsActive,
    poll: float = POLL_SECONDS,
) -> Iterator[pipeline_pb2.WatchBuildResponse]:
    """The whole build now, then again after each change; ends after a terminal one.

    Reloads happen at most every ``WATCH_MIN_INTERVAL`` seconds: a wide build changes
    hundreds of times a second and each reload reads every job and step, while five
    updates a second are plenty for a person watching.
    """
    since = feed.version(build_id)
    last: bytes | None = None
    loaded_at = 0.0
    while is_active():
        pause = loaded_at + WATCH_MIN_INTERVAL - time.monotonic()
        if pause > 0:
            time.sleep(pause)  # coalesce a burst of changes into one message
        loaded_at = time.monotonic()
        build = load_build(db, build_id)
        mark = fingerprint(build)
        if mark != last:
            last = mark
            yield pipeline_pb2.WatchBuildResponse(build=build)
        if _terminal(build):
            return
        since = feed.wait(build_id, since, timeout=poll)


def _terminal(build: common_pb2.Build) -> bool:
    status = convert.build_status_from_proto(build.status)
    return status is not None and status.terminal
