"""Queue time and dependency-release latency from the moments a BuildActor sees."""

from __future__ import annotations

from observability import metrics
from observability.timings import BuildTimings
from tests.observability.conftest import sample


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_queue_time_runs_from_ready_to_started(fresh: metrics.Metrics) -> None:
    clock = Clock()
    timings = BuildTimings(clock)
    timings.job_ready("a")
    clock.now += 2.5
    timings.job_ready("a")  # asked again while still waiting: the first moment counts
    clock.now += 0.5
    timings.job_started("a", needs=())
    assert sample(fresh, "conveyor_job_queue_seconds_count") == 1
    assert sample(fresh, "conveyor_job_queue_seconds_sum") == 3.0
    assert sample(fresh, "conveyor_dependency_release_seconds_count") == 0


def test_release_latency_runs_from_the_last_need_finishing(fresh: metrics.Metrics) -> None:
    clock = Clock()
    timings = BuildTimings(clock)
    timings.job_finished("a")
    clock.now += 1.0
    timings.job_finished("b")
    clock.now += 0.004
    timings.job_ready("c")
    timings.job_started("c", needs=("a", "b"))
    assert sample(fresh, "conveyor_dependency_release_seconds_count") == 1
    assert abs(sample(fresh, "conveyor_dependency_release_seconds_sum") - 0.004) < 1e-9
    assert sample(fresh, "conveyor_dependency_release_seconds_bucket", le="0.005") == 1
    assert sample(fresh, "conveyor_dependency_release_seconds_bucket", le="0.0025") == 0


def test_needs_finished_before_a_takeover_give_no_release_sample(fresh: metrics.Metrics) -> None:
    timings = BuildTimings(Clock())
    timings.job_finished("b")  # "a" finished under the previous executor: moment unknown
    timings.job_started("c", needs=("a", "b"))
    timings.job_started("d", needs=())  # never marked ready (resumed): no queue sample
    assert sample(fresh, "conveyor_dependency_release_seconds_count") == 0
    assert sample(fresh, "conveyor_job_queue_seconds_count") == 0
