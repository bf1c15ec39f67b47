"""The engine on the fake backend (support/fake_backend.py): scheduling, failure and
cancellation as the backend protocol reports them, with no process started."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from actors.messages import RunJob
from support.fake_backend import FakeBackend, FakeRun
from support.harness import Engine, engine

DIAMOND = """
    jobs:
      a: {steps: [{run: "true"}]}
      b: {needs: a, steps: [{run: "true"}]}
      c: {needs: a, steps: [{run: "true"}]}
      d: {needs: [b, c], steps: [{run: "true"}]}
    """


@pytest.fixture
def fake() -> FakeBackend:
    return FakeBackend()


@pytest.fixture
def eng(tmp_path: Path, fake: FakeBackend) -> Iterator[Engine]:
    with engine(tmp_path, job_backend=fake) as e:
        yield e


def test_a_job_runs_only_after_its_needs(eng: Engine, fake: FakeBackend) -> None:
    result = eng.run(DIAMOND)
    assert result.status == "SUCCEEDED", result.build
    keys = fake.job_keys()
    assert keys[0] == "a" and sorted(keys[1:3]) == ["b", "c"] and keys[3:] == ["d"], keys
    assert {run.attempt for run in fake.runs} == {1}
    assert fake.stops == []


def test_a_failed_need_skips_its_dependents_and_keeps_the_output(tmp_path: Path) -> None:
    def script(run: RunJob) -> FakeRun:
        return FakeRun(3, ("compiling", "error: no")) if run.job_key == "b" else FakeRun()

    fake = FakeBackend(script)
    with engine(tmp_path, job_backend=fake) as eng:
        result = eng.run(DIAMOND)
        assert result.status == "FAILED", result.build
        assert result.statuses() == {"a": "SUCCEEDED", "b": "FAILED", "c": "SUCCEEDED",
                                     "d": "SKIPPED"}
        assert result.job("b").exit_code == 3
        assert eng.log_text(result.build.id, "b") == ["compiling", "error: no"]
    assert "d" not in fake.job_keys()


def test_cancelling_a_build_stops_its_running_job(tmp_path: Path) -> None:
    fake = FakeBackend(lambda run: FakeRun(hold=True))
    with engine(tmp_path, job_backend=fake) as eng:
        build = eng.start(DIAMOND)
        fake.wait_for(lambda f: f.job_keys() == ["a"])
        eng.cancel(build.id)
        result = eng.watch(build.id)
        assert result.status == "CANCELLED", result.build
        assert set(result.statuses().values()) == {"CANCELLED"}
        assert [stop.name for stop in fake.stops] == [fake.runs[0].name]
        assert fake.job_keys() == ["a"]


def test_a_held_job_ends_when_released(eng: Engine, fake: FakeBackend) -> None:
    fake.script = lambda run: FakeRun(hold=run.job_key == "a")
    build = eng.start(DIAMOND)
    fake.wait_for(lambda f: f.job_keys() == ["a"])
    fake.release("a")
    result = eng.watch(build.id)
    assert result.status == "SUCCEEDED", result.build
    assert fake.job_keys()[3:] == ["d"]
