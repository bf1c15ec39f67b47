"""The Prometheus metrics of one Conveyor process, and the calls the engine makes.

Why module-level functions over a ``Metrics`` object passed through ``Services``: the
callers are actors, the Kubernetes client wrappers and the runtime, several of which
have no ``Services`` at hand; a process runs one runtime in production; and pykka's
``ActorRegistry``, which the gauges read, is process-wide anyway. Actors stay testable
with no set-up (a call always lands in the current registry), and tests get exact
values from a fresh registry with ``reset()``. Two runtimes in one test process share
the counters: compare before/after values or ``reset()`` first.

Gauges of what runs now (builds, jobs, actors by kind, queue depth) are collected at
scrape time from their source of truth, so no bookkeeping can drift.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter as Tally
from collections.abc import Callable, Iterable

import pykka
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    Info,
    disable_created_metrics,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)

# `*_created` series double every counter for a timestamp dashboards rarely use.
disable_created_metrics()  # type: ignore[no-untyped-call]

BUILD_TERMINAL = ("SUCCEEDED", "FAILED", "CANCELLED", "ERROR")
JOB_TERMINAL = ("SUCCEEDED", "FAILED", "CANCELLED", "SKIPPED")

# Seconds. Jobs run from a second to hours; queueing and dependency release should be
# milliseconds (the README's claim), so their buckets start small.
_DURATION_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400)
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5,
                    10, 30, 60, 300)

# The class names the engine's actors are registered under (strings: this module is
# imported by the actors, so it cannot import them).
BUILD_ACTOR = "BuildActor"


class ActorCollector(Collector):
    """Live actors by kind, and running builds and jobs, read from pykka at scrape time.

    A build runs while its BuildActor lives; a job from its launch until its JobActor
    stops (JobActors started ahead of their needs, idle, do not count).
    """

    def collect(self) -> Iterable[Metric]:
        kinds: Tally[str] = Tally(ref.actor_class.__name__ for ref in pykka.ActorRegistry.get_all())
        actors = GaugeMetricFamily("conveyor_actors", "Live actors by kind.", labels=["kind"])
        for kind, count in sorted(kinds.items()):
            actors.add_metric([kind], count)
        yield actors
        yield GaugeMetricFamily("conveyor_builds_running", "Builds this process runs now.",
                                value=kinds.get(BUILD_ACTOR, 0))
        yield GaugeMetricFamily("conveyor_jobs_running", "Job attempts this process runs now.",
                                value=jobs_running())


class QueueDepthCollector(Collector):
    """Messages waiting in the build queue, asked of the queue at scrape time."""

    def __init__(self) -> None:
        self._source: Callable[[], int] | None = None
        self._lock = threading.Lock()

    def watch(self, source: Callable[[], int] | None) -> None:
        with self._lock:
            self._source = source

    def collect(self) -> Iterable[Metric]:
        with self._lock:
            source = self._source
        if source is None:
            return
        try:
            depth = source()
        except Exception as exc:  # a scrape must not fail because the broker is down
            log.warning("queue depth unavailable: %s", exc)
            return
        if depth >= 0:  # -1: the broker cannot say; no sample beats a wrong one
            yield GaugeMetricFamily("conveyor_queue_depth",
                                    "Build messages waiting in the queue.", value=depth)


class Metrics:
    """Every Conveyor metric, registered on one registry."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.info = Info("conveyor", "Version and role of this process.", registry=r)
        self.builds_finished = Counter(
            "conveyor_builds_finished", "Builds this process finished, by final status.",
            ["status"], registry=r)
        self.build_duration = Histogram(
            "conveyor_build_duration_seconds", "From claiming a build to its final status.",
            ["status"], buckets=_DURATION_BUCKETS, registry=r)
        self.jobs_finished = Counter(
            "conveyor_jobs_finished", "Job attempts finished, by final status.",
            ["status"], registry=r)
        self.job_duration = Histogram(
            "conveyor_job_duration_seconds", "From a job going RUNNING to its result.",
            ["status"], buckets=_DURATION_BUCKETS, registry=r)
        self.job_queue = Histogram(
            "conveyor_job_queue_seconds",
            "From a job being ready (needs met; QUEUED while slots are full) to RUNNING.",
            buckets=_LATENCY_BUCKETS, registry=r)
        self.dependency_release = Histogram(
            "conveyor_dependency_release_seconds",
            "From the last of a job's needs finishing to the job starting.",
            buckets=_LATENCY_BUCKETS, registry=r)
        self.log_lines_ingested = Counter(
            "conveyor_log_lines_ingested", "Job output lines received by the log actor.",
            registry=r)
        self.log_lines_written = Counter(
            "conveyor_log_lines_written", "Job output lines written to the database.",
            registry=r)
        self.log_flush_errors = Counter(
            "conveyor_log_flush_errors", "Log flushes that failed and will be retried.",
            registry=r)
        self.k8s_api_errors = Counter(
            "conveyor_k8s_api_errors", "Failed Kubernetes API calls, by verb and status code.",
            ["verb", "code"], registry=r)
        self.actor_restarts = Counter(
            "conveyor_actor_restarts", "Service actors restarted by the supervisor.",
            ["actor"], registry=r)
        self.build_takeovers = Counter(
            "conveyor_build_takeovers", "Builds taken over after their owner's lease expired.",
            registry=r)
        for status in BUILD_TERMINAL:  # series exist at 0 before the first build
            self.builds_finished.labels(status)
        for status in JOB_TERMINAL:
            self.jobs_finished.labels(status)
        self.queue_depth = QueueDepthCollector()
        r.register(self.queue_depth)
        r.register(ActorCollector())
        r.register(ProcessCollector(registry=None))


_current = Metrics()


def current() -> Metrics:
    """The metrics every call below records into."""
    return _current


def registry() -> CollectorRegistry:
    """The registry to expose (read at each scrape, so ``reset()`` takes effect)."""
    return _current.registry


def reset() -> Metrics:
    """Start over with a fresh registry (tests); returns it."""
    global _current
    _current = Metrics()
    return _current


# -- calls made by the runtime and the engine ----------------------------------------------


def set_info(*, version: str, role: str) -> None:
    _current.info.info({"version": version, "role": role})


def watch_queue_depth(source: Callable[[], int] | None) -> None:
    """Report ``source()`` as ``conveyor_queue_depth`` at each scrape (None: stop)."""
    _current.queue_depth.watch(source)


def build_finished(status: str, duration_s: float) -> None:
    _current.builds_finished.labels(status).inc()
    _current.build_duration.labels(status).observe(max(duration_s, 0.0))


_running_jobs = 0
_running_lock = threading.Lock()


def job_running(delta: int) -> None:
    """A JobActor launched its job (+1) or stopped after launching it (-1)."""
    global _running_jobs
    with _running_lock:
        _running_jobs += delta


def jobs_running() -> int:
    with _running_lock:
        return _running_jobs


def job_finished(status: str, duration_s: float | None = None) -> None:
    """A job attempt reached a terminal status; ``duration_s`` None when it never ran."""
    _current.jobs_finished.labels(status).inc()
    if duration_s is not None:
        _current.job_duration.labels(status).observe(max(duration_s, 0.0))


def job_queued_for(seconds: float) -> None:
    _current.job_queue.observe(max(seconds, 0.0))


def dependency_released(seconds: float) -> None:
    _current.dependency_release.observe(max(seconds, 0.0))


def log_lines_ingested(count: int) -> None:
    _current.log_lines_ingested.inc(count)


def log_lines_written(count: int) -> None:
    _current.log_lines_written.inc(count)


def log_flush_failed() -> None:
    _current.log_flush_errors.inc()


def k8s_api_error(verb: str, code: int | str) -> None:
    """A Kubernetes API call failed: ``verb`` as in RBAC (create, get, list, watch,
    delete) and ``code`` the HTTP status, or a short word (``timeout``, ``connection``)
    when no response came back."""
    _current.k8s_api_errors.labels(verb.lower(), str(code)).inc()


def actor_restarted(name: str) -> None:
    _current.actor_restarts.labels(name).inc()


def build_taken_over() -> None:
    _current.build_takeovers.inc()
