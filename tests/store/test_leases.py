"""Build leases: claim, renew, expiry, takeover, release."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest

import store
from store import BuildRecord, PipelineRecord
from workflow.states import BuildStatus


@pytest.fixture
def build(pipeline: PipelineRecord) -> BuildRecord:
    created, _ = store.create_build(pipeline.id, workflow_yaml="s")
    return created


def test_claim_moves_queued_to_running(build: BuildRecord) -> None:
    claimed = store.claim_build(build.id, "ex-1", 30)
    assert claimed is not None
    assert (claimed.status, claimed.owner) == (BuildStatus.RUNNING, "ex-1")
    assert claimed.started_at is not None and claimed.lease_until is not None
    assert claimed.lease_until - claimed.started_at == timedelta(seconds=30)


def test_live_lease_keeps_other_owners_out(build: BuildRecord) -> None:
    first = store.claim_build(build.id, "ex-1", 30)
    assert first is not None
    assert store.claim_build(build.id, "ex-2", 30) is None
    again = store.claim(build.id, "ex-1", 60)  # a replayed claim: held, not taken over
    assert again is not None and again.build.owner == "ex-1"
    assert again.kind is store.ClaimKind.HELD
    assert again.build.started_at == first.started_at
    assert store.expired_builds() == []


def test_only_one_of_many_claimers_wins(build: BuildRecord) -> None:
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda i: store.claim_build(build.id, f"ex-{i}", 30), range(8)))
    winners = [r for r in results if r is not None]
    assert len(winners) == 1
    assert store.get_build(build.id).owner == winners[0].owner


def test_expired_lease_is_listed_and_taken_over(build: BuildRecord) -> None:
    claimed = store.claim_build(build.id, "ex-1", 30)
    assert claimed is not None and claimed.lease_until is not None
    later = claimed.lease_until + timedelta(seconds=1)
    assert store.expired_builds(now=claimed.lease_until - timedelta(seconds=1)) == []
    assert [b.id for b in store.expired_builds(now=later)] == [build.id]
    taken = store.claim_build(build.id, "ex-2", 30, now=later)
    assert taken is not None and taken.owner == "ex-2"
    assert taken.started_at == claimed.started_at
    # The old owner learns it lost the build when it renews.
    assert store.renew_leases("ex-1", [build.id], 30, now=later) == []
    assert store.renew_leases("ex-2", [build.id], 30, now=later) == [build.id]


def test_renew_extends_only_own_running_leases(pipeline: PipelineRecord) -> None:
    ids = [store.create_build(pipeline.id, workflow_yaml="s")[0].id for _ in range(3)]
    for build_id in ids[:2]:
        assert store.claim_build(build_id, "ex-1", 5) is not None
    store.finish_build(ids[1], BuildStatus.SUCCEEDED, "")
    before = store.get_build(ids[0]).lease_until
    assert store.renew_leases("ex-1", ids, 120) == [ids[0]]
    after = store.get_build(ids[0]).lease_until
    assert before is not None and after is not None and after > before
    assert store.renew_leases("ex-1", [], 120) == []


def test_released_build_can_be_taken_at_once(build: BuildRecord) -> None:
    assert store.claim_build(build.id, "ex-1", 300) is not None
    assert not store.release_build(build.id, "ex-2")
    assert store.release_build(build.id, "ex-1")
    assert [b.id for b in store.expired_builds()] == [build.id]
    taken = store.claim_build(build.id, "ex-2", 30)
    assert taken is not None and taken.owner == "ex-2"


def test_claim_of_unknown_build_is_not_found(build: BuildRecord) -> None:
    with pytest.raises(store.NotFound):
        store.claim_build(build.id + 1, "ex-1", 30)
    with pytest.raises(ValueError, match="lease_s"):
        store.claim_build(build.id, "ex-1", 0)


def test_a_claim_says_whether_it_started_took_over_or_already_held_the_build(
        pipeline: PipelineRecord) -> None:
    build, _ = store.create_build(pipeline.id, workflow_yaml="s")
    started = store.claim(build.id, "ex-1", 30)
    assert started is not None and started.kind is store.ClaimKind.STARTED
    assert started.build.lease_until is not None
    held = store.claim(build.id, "ex-1", 30)
    assert held is not None and held.kind is store.ClaimKind.HELD
    assert store.claim(build.id, "ex-2", 30) is None
    # Expired, even ex-1's own lease is an orphan's: whoever claims it takes it over.
    later = started.build.lease_until + timedelta(seconds=1)
    mine = store.claim(build.id, "ex-1", 30, now=later)
    assert mine is not None and mine.kind is store.ClaimKind.TAKEN_OVER
    assert store.release_build(build.id, "ex-1")
    taken = store.claim(build.id, "ex-2", 30)
    assert taken is not None and taken.kind is store.ClaimKind.TAKEN_OVER
    assert taken.build.owner == "ex-2"
    store.finish_build(build.id, BuildStatus.SUCCEEDED, "done")
    assert store.claim(build.id, "ex-2", 30) is None


def test_of_many_claimers_of_an_orphan_one_takes_it_over(pipeline: PipelineRecord) -> None:
    build, _ = store.create_build(pipeline.id, workflow_yaml="s")
    first = store.claim_build(build.id, "dead", 30)
    assert first is not None and first.lease_until is not None
    later = first.lease_until + timedelta(seconds=1)
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda i: store.claim(build.id, f"ex-{i}", 30, now=later),
                                range(8)))
    winners = [r for r in results if r is not None]
    assert [w.kind for w in winners] == [store.ClaimKind.TAKEN_OVER]
