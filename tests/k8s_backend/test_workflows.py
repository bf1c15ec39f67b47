"""Engine scenarios (tests/engine/test_semantics.py) on the Kubernetes backend: the real
runtime, SQLite, the memory queue, and the emulator running each Job's pod."""

from __future__ import annotations

from pathlib import Path

from conveyor.v1 import pipeline_pb2
from k8s.manifests import JOB_KEY_ANNOTATION, job_name
from support.harness import Engine, matrix
from support.k8s_emulator import Emulator
from tests.k8s.helpers import alive
from tests.k8s_backend.conftest import (
    backend,
    jobs_per_key,
    k8s_jobs,
    k8s_pods,
    kube_engine,
)


def test_hello_succeeds_with_logs_steps_and_two_calls_per_job(
        k8s_eng: Engine, emulator: Emulator) -> None:
    result = k8s_eng.run("""
        name: hello
        jobs:
          greet:
            steps:
              - name: Say hello
                run: echo "hello, world"
              - name: Shell arithmetic, not Kubernetes $(VAR) expansion
                run: 'echo "cost: $((6 * 7))"'
        """)
    assert result.status == "SUCCEEDED", result.build
    job = result.job("greet")
    assert job.exit_code == 0 and result.job_status("greet") == "SUCCEEDED"
    assert [(s.name, s.reason) for s in job.steps] == [
        ("Say hello", "succeeded"),
        ("Shell arithmetic, not Kubernetes $(VAR) expansion", "succeeded")]
    assert k8s_eng.log_text(result.build.id, "greet") == ["hello, world", "cost: 42"]
    [created] = k8s_jobs(emulator)
    assert created["metadata"]["name"] == job_name(result.build.id, "greet", 1)
    assert created["spec"]["template"]["spec"]["containers"][0]["image"] == "ubuntu:24.04"
    by_verb = emulator.stats()["by_verb"]
    assert (by_verb["create jobs"], by_verb["get pods/log"]) == (1, 1)
    counters = backend().counters
    assert counters["jobs_created"] == 1 and counters.get("jobs_adopted", 0) == 0


def test_outputs_flow_between_jobs_and_container_image_is_used(
        k8s_eng: Engine, emulator: Emulator) -> None:
    result = k8s_eng.run("""
        jobs:
          build:
            container: node:22
            outputs:
              version: ${{ steps.v.outputs.version }}
            steps:
              - id: v
                run: echo "version=1.2.3" >> "$GITHUB_OUTPUT"
          test:
            needs: build
            if: needs.build.outputs.version == '1.2.3'
            steps:
              - run: echo "testing ${{ needs.build.outputs.version }}"
        """)
    assert result.status == "SUCCEEDED"
    assert dict(result.job("build").outputs) == {"version": "1.2.3"}
    assert k8s_eng.log_text(result.build.id, "test") == ["testing 1.2.3"]
    images = {j["metadata"]["name"]: j["spec"]["template"]["spec"]["containers"][0]["image"]
              for j in k8s_jobs(emulator)}
    assert images[job_name(result.build.id, "build", 1)] == "node:22"


def test_failure_skips_dependents_unless_always_or_failure(k8s_eng: Engine) -> None:
    result = k8s_eng.run("""
        jobs:
          lint:
            steps: [{run: "exit 3"}]
          test:
            needs: lint
            steps: [{run: "echo never"}]
          report:
            needs: lint
            if: failure()
            steps: [{run: "echo reporting"}]
        """)
    assert result.status == "FAILED"
    assert result.statuses() == {"lint": "FAILED", "test": "SKIPPED", "report": "SUCCEEDED"}
    assert result.job("lint").exit_code == 3
    assert result.job("lint").reason.endswith("failed: exit code 3")


def test_matrix_job_waits_for_all_combinations(k8s_eng: Engine, emulator: Emulator) -> None:
    result = k8s_eng.run("""
        jobs:
          test:
            strategy:
              matrix:
                py: ['3.11', '3.12']
            steps: [{run: "echo ${{ matrix.py }}"}]
          deploy:
            needs: test
            steps: [{run: "echo deploy"}]
        """)
    assert result.status == "SUCCEEDED"
    assert [matrix(j) for j in result.build.jobs if j.key != "deploy"] == [
        {"py": "3.11"}, {"py": "3.12"}]
    assert k8s_eng.log_text(result.build.id, "test (3.12)") == ["3.12"]
    deploy = result.job("deploy")
    for key in ("test (3.11)", "test (3.12)"):
        assert deploy.start_time.ToMicroseconds() >= \
            result.job(key).finish_time.ToMicroseconds() - 1000
    assert jobs_per_key(emulator) == {"test (3.11)": 1, "test (3.12)": 1, "deploy": 1}


def test_job_timeout_is_the_jobs_active_deadline(k8s_eng: Engine, emulator: Emulator) -> None:
    result = k8s_eng.run("""
        jobs:
          slow:
            timeout-minutes: 0.01
            steps: [{run: "echo started; sleep 30"}]
        """)
    assert result.job_status("slow") == "FAILED"
    assert result.job("slow").reason == "timed out after 0.6s"
    assert k8s_eng.log_text(result.build.id, "slow") == ["started"]
    [job] = k8s_jobs(emulator)
    assert job["spec"]["activeDeadlineSeconds"] == 1
    assert [c["reason"] for c in job["status"]["conditions"] if c["type"] == "Failed"] == [
        "DeadlineExceeded"]


def test_cancel_deletes_the_job_and_kills_the_pod(k8s_eng: Engine, tmp_path: Path,
                                                  emulator: Emulator) -> None:
    pidfile = tmp_path / "pid"
    build = k8s_eng.start(f"""
        jobs:
          long:
            steps: [{{run: "echo $$ > {pidfile}; echo started; sleep 60"}}]
          later:
            needs: long
            steps: [{{run: "echo never"}}]
        """)
    logs = k8s_eng.client.pipelines.StreamBuildLogs(
        pipeline_pb2.StreamBuildLogsRequest(build_id=build.id, follow=True), timeout=60)
    for message in logs:
        if any(line.text == "started" for line in message.lines):
            k8s_eng.cancel(build.id)
            break
    logs.cancel()
    result = k8s_eng.watch(build.id)
    assert result.status == "CANCELLED"
    assert result.statuses() == {"long": "CANCELLED", "later": "CANCELLED"}
    assert not alive(int(pidfile.read_text()))
    assert emulator.live_pids() == []
    assert k8s_jobs(emulator) == [] and k8s_pods(emulator) == []
    assert emulator.stats()["by_verb"]["delete jobs"] == 1


def test_100k_log_lines_in_order(k8s_eng: Engine) -> None:
    result = k8s_eng.run("""
        jobs:
          noisy:
            steps:
              - run: seq 1 100000
        """, timeout=120)
    assert result.status == "SUCCEEDED"
    lines = k8s_eng.logs(result.build.id, "noisy")
    assert [line.number for line in lines] == list(range(1, 100_001))
    assert [line.text for line in lines] == [str(n) for n in range(1, 100_001)]


def test_step_events_and_outputs_survive_output_without_newline(k8s_eng: Engine) -> None:
    result = k8s_eng.run("""
        jobs:
          j:
            steps:
              - run: printf 'no newline'
              - run: printf 'tail'; exit 2
        """)
    assert result.job_status("j") == "FAILED" and result.job("j").exit_code == 2
    assert k8s_eng.log_text(result.build.id, "j") == ["no newline", "tail"]
    assert [s.reason for s in result.job("j").steps] == ["succeeded", "exit code 2"]


def test_env_reaches_the_pod_unexpanded_by_kubernetes(k8s_eng: Engine) -> None:
    result = k8s_eng.run("""
        env: {GREETING: "hi $(USER) $HOME"}
        jobs:
          j:
            env: {WHO: "the pod"}
            steps: [{run: 'echo "$GREETING from $WHO"'}]
        """)
    assert k8s_eng.log_text(result.build.id, "j") == ["hi $(USER) $HOME from the pod"]


def test_runs_on_labels_pick_the_configured_image(tmp_path: Path, emulator: Emulator) -> None:
    images = {"ubuntu-latest": "ubuntu:24.04", "big": "example.org/ci/big:1"}
    with kube_engine(tmp_path, emulator, runs_on_images=images, image="busybox:1") as eng:
        result = eng.run("""
            jobs:
              mapped: {runs-on: [self-hosted, big], steps: [{run: "true"}]}
              plain: {runs-on: ubuntu-latest, steps: [{run: "true"}]}
              unknown: {runs-on: "${{ 'some-label' }}", steps: [{run: "true"}]}
              none: {steps: [{run: "true"}]}
            """)
    assert result.status == "SUCCEEDED", result.build.reason
    used = {j["metadata"]["annotations"][JOB_KEY_ANNOTATION]:
            j["spec"]["template"]["spec"]["containers"][0]["image"] for j in k8s_jobs(emulator)}
    assert used == {"mapped": "example.org/ci/big:1", "plain": "ubuntu:24.04",
                    "unknown": "busybox:1", "none": "busybox:1"}
