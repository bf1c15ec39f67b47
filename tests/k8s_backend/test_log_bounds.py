"""Bounded logs on the Kubernetes backend: long lines cut the same way on every read of
the pod's log, and a job's cap."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pykka

from actors.backends.kubernetes.actor import K8sActor
from actors.logbatch import TRUNCATED_PREFIX
from support.harness import Engine
from support.k8s_emulator import Emulator
from tests.k8s_backend.conftest import kube_engine
from tests.k8s_backend.test_faults import on_lines
from workflow.markers import MAX_LINE


def test_long_lines_survive_a_cut_log_stream_without_loss_or_duplicates(
        k8s_eng: Engine, emulator: Emulator, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    wide = "head -c 150000 /dev/zero | tr '\\\\0' w; echo"
    build = k8s_eng.start(f"""
        jobs:
          j:
            steps:
              - run: |
                  {wide}; echo first
                  while [ ! -e {gate} ]; do sleep 0.02; done
                  {wide}; echo second
        """)
    on_lines(k8s_eng, build.id, lambda text, _n: text == "first")
    [ref] = pykka.ActorRegistry.get_by_class(K8sActor)
    # White box: cut the follower's HTTP stream under it: the log is read again from its
    # start, and must be cut into the same pieces to be skipped exactly.
    trackers: dict[str, Any] = ref.proxy().trackers.get(timeout=5)
    [tracker] = trackers.values()
    with tracker.follower._lock:
        tracker.follower._stream.close()
    gate.touch()
    result = k8s_eng.watch(build.id, timeout=60)
    assert result.status == "SUCCEEDED"
    lines = k8s_eng.logs(build.id, "j")
    pieces = [(len(line.text), line.continued) for line in lines]
    one = [(MAX_LINE, True), (MAX_LINE, True), (150_000 - 2 * MAX_LINE, False)]
    assert pieces == [*one, (5, False), *one, (6, False)]
    assert [line.number for line in lines] == list(range(1, 9))
    assert emulator.stats()["by_verb"]["get pods/log"] == 2


def test_a_pod_log_stops_at_the_jobs_cap(tmp_path: Path, emulator: Emulator) -> None:
    with kube_engine(tmp_path, emulator, max_job_log_bytes=2000) as eng:
        result = eng.run("jobs: {loud: {steps: [{run: 'seq 1 5000; echo done'}]}}", timeout=60)
        assert result.job_status("loud") == "SUCCEEDED"
        assert result.job("loud").reason.endswith("(log truncated at 2,000 bytes)")
        lines = eng.log_text(result.build.id, "loud")
        assert lines[-1].startswith(TRUNCATED_PREFIX)
        assert lines[:-1] == [str(n) for n in range(1, len(lines))]
