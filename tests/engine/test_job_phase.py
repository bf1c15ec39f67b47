"""The phases of a build's jobs (actors/job_phase.py): the allowed moves, and a bug's
move refused."""

from __future__ import annotations

import pytest

from actors.job_phase import IllegalMove, JobPhases, Phase


def test_a_job_queued_for_a_slot_runs_then_is_persisted() -> None:
    phases: JobPhases[str] = JobPhases()
    phases.queue("a")
    assert phases.of("a") is Phase.QUEUED and phases.unstarted("a")
    assert phases.ref("a") is None and phases.running() == []
    phases.run("a", "ref-a")
    assert phases.of("a") is Phase.RUNNING and not phases.unstarted("a")
    assert phases.ref("a") == "ref-a" and phases.running() == ["ref-a"]
    phases.persisted("a")
    assert phases.of("a") is None and phases.running() == []
    phases.persisted("a")  # a repeated report finds it gone
    assert phases.of("a") is None


def test_a_starting_job_runs_on_arrival_or_is_cancelled_before() -> None:
    phases: JobPhases[str] = JobPhases()
    phases.starting("a")
    phases.starting("b")
    assert phases.unstarted("a") and phases.unstarted("b")
    phases.run("a", "ref-a")
    phases.cancel_unstarted("b")
    assert (phases.of("a"), phases.of("b")) == (Phase.RUNNING, None)


def test_a_job_may_run_at_once() -> None:
    phases: JobPhases[str] = JobPhases()
    phases.run("a", "ref-a")
    assert phases.running() == ["ref-a"]


@pytest.mark.parametrize(("before", "move"), [
    ("run", "run"),        # started twice
    ("run", "queue"),      # back to waiting for a slot
    ("run", "starting"),
    ("queue", "queue"),
    ("queue", "starting"),  # a queued job is spawned by its slot, not the launcher
    ("starting", "queue"),
    ("starting", "starting"),
])
def test_a_move_the_phases_do_not_allow_is_refused(before: str, move: str) -> None:
    phases: JobPhases[str] = JobPhases()
    getattr(phases, before)("a", *(["ref"] if before == "run" else []))
    with pytest.raises(IllegalMove, match=f"job 'a': {phases.of('a').name}"):
        getattr(phases, move)("a", *(["ref"] if move == "run" else []))


def test_only_an_unstarted_job_ends_without_running() -> None:
    phases: JobPhases[str] = JobPhases()
    with pytest.raises(IllegalMove, match="no phase cannot end before it starts"):
        phases.cancel_unstarted("a")
    phases.run("a", "ref-a")
    with pytest.raises(IllegalMove, match="RUNNING cannot end before it starts"):
        phases.cancel_unstarted("a")


def test_clear_forgets_every_job() -> None:
    phases: JobPhases[str] = JobPhases()
    phases.queue("a")
    phases.starting("b")
    phases.run("c", "ref-c")
    phases.clear()
    assert [phases.of(k) for k in "abc"] == [None, None, None] and phases.running() == []
