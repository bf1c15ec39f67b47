from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from conveyor.v1 import common_pb2
from rpc import convert
from rpc.build_streams import _in_order
from rpc.build_view import latest_jobs
from store.records import BuildRecord, JobRecord, LogLine, StepRecord
from workflow.states import BuildStatus, JobStatus, StepStatus


def test_every_domain_status_has_a_proto_value_and_back() -> None:
    for status in BuildStatus:
        assert convert.build_status_from_proto(convert.build_status(status)) == status
    assert convert.build_status_from_proto(common_pb2.BUILD_STATUS_UNSPECIFIED) is None
    assert {convert.job_status(s) for s in JobStatus} == set(
        common_pb2.JobStatus.values()
    ) - {common_pb2.JOB_STATUS_UNSPECIFIED}
    assert {convert.step_status(s) for s in StepStatus} == set(
        common_pb2.StepStatus.values()
    ) - {common_pb2.STEP_STATUS_UNSPECIFIED}


def test_timestamps_are_utc_and_naive_means_utc() -> None:
    naive = datetime(2026, 1, 2, 3, 4, 5)
    aware = datetime(2026, 1, 2, 5, 4, 5, tzinfo=timezone(timedelta(hours=2)))
    a, b = convert.timestamp(naive), convert.timestamp(aware)
    assert a is not None and b is not None
    assert a == b
    assert a.ToDatetime(tzinfo=UTC) == naive.replace(tzinfo=UTC)
    assert convert.timestamp(None) is None


def test_build_with_jobs_and_steps() -> None:
    build = BuildRecord(
        id=5, pipeline_id=1, pipeline_name="p", number=2, status=BuildStatus.RUNNING,
        inputs={"flag": True, "name": "x"}, request_id=None,
    )
    job = JobRecord(
        id=9, build_id=5, key="t (3)", job_id="t", name="t", status=JobStatus.FAILED,
        exit_code=2, matrix={"py": 3}, needs=("a",),
    )
    steps = [
        StepRecord(id=2, job_id=9, index=1, name="b", status=StepStatus.SKIPPED),
        StepRecord(id=1, job_id=9, index=0, name="a", status=StepStatus.FAILED, exit_code=2),
    ]
    msg = convert.build(build, [job], {9: steps})
    assert msg.inputs == {"flag": "true", "name": "x"}
    assert msg.request_id == ""
    assert msg.jobs[0].matrix == {"py": "3"}
    assert msg.jobs[0].HasField("exit_code") and msg.jobs[0].exit_code == 2
    assert [s.name for s in msg.jobs[0].steps] == ["a", "b"]
    assert not msg.jobs[0].steps[1].HasField("exit_code")


def test_latest_jobs_keeps_the_newest_attempt_per_key() -> None:
    def job(row: int, key: str, attempt: int) -> JobRecord:
        return JobRecord(
            id=row, build_id=1, key=key, job_id=key, name=key,
            status=JobStatus.SUCCEEDED, attempt=attempt,
        )

    jobs = latest_jobs([job(1, "a", 1), job(2, "b", 1), job(3, "a", 2)])
    assert [(j.key, j.attempt) for j in jobs] == [("a", 2), ("b", 1)]


def test_log_lines_stop_before_a_gap_unless_the_job_is_done() -> None:
    lines = [LogLine(1, n, f"l{n}") for n in (3, 4, 6, 2)]
    assert [x.number for x in _in_order(lines, 3, allow_gaps=False)] == [3, 4]
    assert [x.number for x in _in_order(lines, 3, allow_gaps=True)] == [3, 4, 6]
    assert _in_order(lines, 5, allow_gaps=False) == []
