"""Issue 12: every message may be duplicated and every handler is idempotent.

The Supervisor and every BuildActor here handle each message twice (``tests.engine.
twice``), and each build's queue message is published again while the build waits in
the backlog, starts, runs and after it finished. The builds must end exactly as they
would otherwise, with every job run (and completed) once, and every broker message
settled exactly once.
"""

from __future__ import annotations

import textwrap
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

import runtime
import store
from conveyor.v1 import executor_pb2
from store.models import Build
from support.harness import Engine, engine, eventually
from tests.engine import twice


@pytest.fixture
def eng(tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    twice.COPIES.clear()
    twice.HANDLED.clear()
    monkeypatch.setattr(runtime, "Supervisor", twice.TwiceSupervisor)
    # Two builds at once (the rest wait in the backlog), two jobs at once (jobs wait for
    # a slot), a lease renewed every 0.2 s (a lost lease is noticed quickly).
    with engine(tmp_path, database_url=db_url, max_builds=2, max_jobs=2, lease_s=5,
                reconcile_s=0.2) as e:
        yield e


def record(shared: Path, name: str) -> str:
    return f'echo "${{{{ github.run_id }}}} {name}" >> {shared}'


def workflows(shared: Path) -> dict[str, str]:
    return {
        "diamond": f"""
            jobs:
              a:
                outputs: {{v: "${{{{ steps.s.outputs.v }}}}"}}
                steps: [{{id: s, run: 'echo "v=7" >> "$GITHUB_OUTPUT"; {record(shared, "a")}'}}]
              b: {{needs: a, steps: [{{run: '{record(shared, "b")}'}}]}}
              c: {{needs: a, steps: [{{run: '{record(shared, "c")}'}}]}}
              d:
                needs: [b, c]
                steps: [{{run: 'echo "got ${{{{ needs.a.result }}}}"; {record(shared, "d")}'}}]
            """,
        "fail-fast": f"""
            jobs:
              t:
                strategy: {{matrix: {{n: [1, 2, 3]}}}}
                steps: [{{run: 'if [ ${{{{ matrix.n }}}} = 2 ]; then exit 3; fi; sleep 30'}}]
              report: {{needs: t, if: failure(), steps: [{{run: '{record(shared, "report")}'}}]}}
            """,
        "lenient": f"""
            jobs:
              flaky:
                continue-on-error: true
                steps: [{{run: '{record(shared, "flaky")}; exit 1'}}]
              next: {{needs: flaky, steps: [{{run: '{record(shared, "next")}'}}]}}
              never: {{if: "false", steps: [{{run: '{record(shared, "never")}'}}]}}
            """,
    }


EXPECTED = {
    "diamond": ("SUCCEEDED", {"a": "SUCCEEDED", "b": "SUCCEEDED", "c": "SUCCEEDED",
                              "d": "SUCCEEDED"}, ["a", "b", "c", "d"]),
    "fail-fast": ("FAILED", {"t (1)": "CANCELLED", "t (2)": "FAILED", "t (3)": "CANCELLED",
                             "report": "SUCCEEDED"}, ["report"]),
    "lenient": ("SUCCEEDED", {"flaky": "FAILED", "next": "SUCCEEDED", "never": "SKIPPED"},
                ["flaky", "next"]),
}


def publish_again(eng: Engine, build_id: int, attempt: int = 1) -> None:
    body = executor_pb2.BuildJob(build_id=build_id, attempt=attempt).SerializeToString()
    assert eng.runtime.queue is not None
    eng.runtime.queue.publish_build(body)


def settle_down(eng: Engine) -> None:
    """Wait until every message was consumed and no BuildActor runs."""
    assert eng.runtime.queue is not None
    queue = eng.runtime.queue
    proxy = eng.runtime._supervisor_proxy()
    eventually(lambda: queue.depth() == 0 and not proxy.running_builds().get(timeout=5),
               "the executor to go idle")


def assert_final_only_once_settled(build_id: int) -> None:
    build = store.get_build(build_id)
    assert build.status.terminal and build.finished_at is not None
    rows = store.list_jobs(build_id)
    assert len({row.key for row in rows}) == len(rows), rows  # one attempt per job
    for row in rows:
        assert row.status.terminal, row
        assert row.finished_at is None or row.finished_at <= build.finished_at, row


def test_every_message_handled_twice_changes_nothing(eng: Engine, tmp_path: Path) -> None:
    shared = tmp_path / "completed.txt"
    started = {}
    for name, text in [*workflows(shared).items(), ("diamond-2", workflows(shared)["diamond"])]:
        build = eng.start(textwrap.dedent(text))
        publish_again(eng, build.id)  # while it starts, or waits in the backlog
        started[build.id] = name.removesuffix("-2")
    results = {build_id: eng.watch(build_id) for build_id in started}
    for build_id in started:
        publish_again(eng, build_id)  # after it finished
    settle_down(eng)

    lines: Counter[str] = Counter()
    for build_id, name in started.items():
        status, jobs, recorded = EXPECTED[name]
        result = results[build_id]
        assert (result.status, result.statuses()) == (status, jobs), (name, result.build)
        assert_final_only_once_settled(build_id)
        lines.update(f"{build_id} {key}" for key in recorded)
    assert Counter(shared.read_text().split("\n")[:-1]) == lines  # each ran once
    assert all(len(copy.settled) == 1 for copy in twice.COPIES), twice.COPIES
    covered = {"BuildRequested", "StartBuild", "BuildFinished", "JobFinished", "JobPersisted",
               "SlotGranted", "Warmed", "LaunchPrepared"}
    assert covered <= set(twice.HANDLED), twice.HANDLED


def test_a_duplicate_arriving_while_a_build_runs_is_settled_and_ignored(
        eng: Engine, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    shared = tmp_path / "completed.txt"
    build = eng.start(textwrap.dedent(f"""
        jobs:
          wait:
            steps: [{{run: 'while [ ! -e {gate} ]; do sleep 0.02; done; {record(shared, "w")}'}}]
        """))
    eventually(lambda: any(r.status.value == "RUNNING" for r in store.list_jobs(build.id)),
               "the job to run")
    publish_again(eng, build.id)
    eventually(lambda: eng.runtime.queue is not None and eng.runtime.queue.depth() == 0,
               "the duplicate to be consumed")
    gate.touch()
    result = eng.watch(build.id)
    assert result.statuses() == {"wait": "SUCCEEDED"}
    settle_down(eng)
    assert shared.read_text() == f"{build.id} w\n"
    assert_final_only_once_settled(build.id)


def test_cancel_and_lost_lease_handled_twice(eng: Engine, tmp_path: Path) -> None:
    shared = tmp_path / "completed.txt"
    long = textwrap.dedent(f"""
        jobs:
          long: {{steps: [{{run: 'sleep 30; {record(shared, "long")}'}}]}}
        """)
    cancelled, lost = eng.start(long), eng.start(long)
    for build in (cancelled, lost):
        eventually(lambda b=build: any(r.status.value == "RUNNING"  # type: ignore[misc]
                                       for r in store.list_jobs(b.id)), "the job to run")
    eng.cancel(cancelled.id)
    assert eng.watch(cancelled.id).statuses() == {"long": "CANCELLED"}
    assert "CancelRequested" in twice.HANDLED
    # Another executor takes the second build over (as if our lease had run out): we
    # must stop its job and write nothing more about it.
    until = store.utcnow() + timedelta(minutes=5)
    with store.database.connection_context():
        Build.update(owner="elsewhere", lease_until=until).where(Build.id == lost.id).execute()
    proxy = eng.runtime._supervisor_proxy()
    eventually(lambda: not proxy.running_builds().get(timeout=5), "our build actor to stop")
    assert twice.HANDLED.get("LeaseLost") == 1  # told the BuildActor once, handled twice
    record_ = store.get_build(lost.id)
    assert (record_.status.value, record_.owner) == ("RUNNING", "elsewhere")
    assert not shared.exists()
    assert all(len(copy.settled) == 1 for copy in twice.COPIES), twice.COPIES
