"""RetryBuild end to end through the real engine (runtime role all, local backend)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from conveyor.v1 import common_pb2
from conveyor.v1 import pipeline_pb2 as pb
from rpc.client import Client, connect
from runtime import Config, Runtime
from support.harness import issue_admin_token

pytestmark = pytest.mark.slow


@pytest.fixture
def client(tmp_path: Path) -> Iterator[Client]:
    runtime = Runtime(Config.from_env(
        env={}, role="all", listen="127.0.0.1:0", queue_url="memory://",
        database_url=f"sqlite:///{tmp_path / 'conveyor.db'}", workdir=tmp_path / "work",
        migrate_on_start=True,
        local_trusted=True,  # the jobs count their runs in files of the test's
    ))
    try:
        runtime.start()
        with connect(runtime.address, issue_admin_token()) as made:
            yield made
    finally:
        runtime.stop()


def _workflow(root: Path) -> str:
    # gen counts its runs; check fails until the fix file exists; report depends on
    # check; lint is independent and counts its runs too.
    return f"""
jobs:
  gen:
    outputs:
      value: ${{{{ steps.v.outputs.value }}}}
    steps:
      - id: v
        run: |
          echo run >> {root}/gen.runs
          echo "value=v-$(wc -l < {root}/gen.runs | tr -d ' ')" >> "$GITHUB_OUTPUT"
  check:
    needs: gen
    steps:
      - run: echo "got ${{{{ needs.gen.outputs.value }}}}"
      - run: test -f {root}/fixed
  report:
    needs: check
    steps:
      - run: echo report >> {root}/report.runs
  lint:
    steps:
      - run: echo run >> {root}/lint.runs
"""


def _wait(client: Client, build_id: int) -> common_pb2.Build:
    last = None
    for message in client.pipelines.WatchBuild(pb.WatchBuildRequest(build_id=build_id),
                                               timeout=60):
        last = message.build
    assert last is not None
    return last


def test_retry_reruns_only_the_failed_job_and_its_dependents(
    client: Client, tmp_path: Path
) -> None:
    root = tmp_path / "state"
    root.mkdir()
    client.pipelines.CreatePipeline(pb.CreatePipelineRequest(
        name="flaky", workflow_yaml=_workflow(root)), timeout=10)
    build = client.pipelines.StartPipelineBuild(
        pb.StartPipelineBuildRequest(pipeline="flaky"), timeout=10).build
    first = _wait(client, build.id)
    jobs = {j.key: j for j in first.jobs}
    assert first.status == common_pb2.BUILD_STATUS_FAILED
    assert jobs["check"].status == common_pb2.JOB_STATUS_FAILED
    assert jobs["report"].status == common_pb2.JOB_STATUS_SKIPPED
    assert dict(jobs["gen"].outputs) == {"value": "v-1"}

    (root / "fixed").touch()
    retried = client.pipelines.RetryBuild(pb.RetryBuildRequest(build_id=build.id),
                                          timeout=10).build
    assert retried.attempt == 2
    second = _wait(client, build.id)
    after = {j.key: j for j in second.jobs}
    assert second.status == common_pb2.BUILD_STATUS_SUCCEEDED, second.reason
    assert {k: (j.status, j.attempt) for k, j in after.items()} == {
        "gen": (common_pb2.JOB_STATUS_SUCCEEDED, 1),
        "lint": (common_pb2.JOB_STATUS_SUCCEEDED, 1),
        "check": (common_pb2.JOB_STATUS_SUCCEEDED, 2),
        "report": (common_pb2.JOB_STATUS_SUCCEEDED, 2),
    }
    # Kept jobs are the same rows with the same outputs, and never ran again.
    assert after["gen"].id == jobs["gen"].id and dict(after["gen"].outputs) == {"value": "v-1"}
    assert (root / "gen.runs").read_text().count("run") == 1
    assert (root / "lint.runs").read_text().count("run") == 1
    assert (root / "report.runs").read_text().count("report") == 1
    # The re-run job saw the kept job's output, and its logs are the new attempt's.
    logs = [line.text for m in client.pipelines.StreamBuildLogs(
        pb.StreamBuildLogsRequest(build_id=build.id, job_key="check"), timeout=30)
        for line in m.lines]
    assert any("got v-1" in text for text in logs)
