"""Pure rules: which jobs a retry re-runs, roles, bearer headers, stream limits."""

from __future__ import annotations

import pytest

from rpc import tokens
from rpc.errors import ResourceExhausted
from rpc.permissions import Action, allows
from rpc.stream_limit import StreamLimit
from store.rerun_rules import LatestJob, jobs_to_rerun
from workflow.states import JobStatus

S, F, C, K, P = (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED,
                 JobStatus.SKIPPED, JobStatus.PENDING)


def test_failed_and_cancelled_jobs_rerun_with_every_dependent() -> None:
    jobs = [
        LatestJob("lint", S), LatestJob("build", S),
        LatestJob("test (a)", F, ("build",)), LatestJob("test (b)", C, ("build",)),
        LatestJob("deploy", K, ("test (a)", "lint")), LatestJob("notify", S, ("deploy",)),
        LatestJob("docs", K, ("lint",)),  # skipped by its own `if`: kept
    ]
    assert jobs_to_rerun(jobs) == {"test (a)", "test (b)", "deploy", "notify"}


def test_unfinished_jobs_of_an_errored_build_rerun_and_success_reruns_nothing() -> None:
    assert jobs_to_rerun([LatestJob("a", S), LatestJob("b", P, ("a",))]) == {"b"}
    assert jobs_to_rerun([LatestJob("a", S), LatestJob("b", K, ("a",))]) == set()


def test_roles_are_ordered() -> None:
    table = {(role, action): allows(role, action)
             for role in ("viewer", "developer", "admin", None, "owner") for action in Action}
    assert [a for a in Action if table[("viewer", a)]] == [Action.READ]
    assert [a for a in Action if table[("developer", a)]] == [Action.READ, Action.OPERATE]
    assert all(table[("admin", a)] for a in Action)
    assert not any(table[(r, a)] for r in (None, "owner") for a in Action)


def test_bearer_header_parsing() -> None:
    assert tokens.bearer([("x", "y"), ("authorization", "Bearer abc ")]) == "abc"
    assert tokens.bearer([("Authorization", b"bearer abc")]) == "abc"
    assert tokens.bearer([]) is None
    for bad in ("Basic abc", "Bearer", "abc"):
        with pytest.raises(ValueError, match="Bearer"):
            tokens.bearer([("authorization", bad)])
    secret = tokens.new_token()
    assert secret.startswith("cvy_") and len(secret) > 40 and tokens.new_token() != secret
    assert tokens.token_hash(secret) != secret and len(tokens.token_hash(secret)) == 64


def test_stream_limit_counts_per_user_and_releases() -> None:
    limit = StreamLimit(2)
    with limit.hold("a"), limit.hold("a"), limit.hold("b"):
        with pytest.raises(ResourceExhausted, match="limit is 2"), limit.hold("a"):
            pass
        assert limit.open_streams("a") == 2
    assert limit.open_streams("a") == 0
