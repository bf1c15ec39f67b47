"""The observability server over real HTTP: /metrics, /healthz, /readyz, owned by a runtime."""

from __future__ import annotations

import json
import socket
import threading
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from observability import metrics
from observability.probes import RuntimeProbes, run_checks
from observability.server import THREAD_NAME, ListenError, parse_listen
from runtime import Config, Runtime
from runtime_config import ListenFailed
from support.harness import engine
from tests.cli.processes import fresh_pg as fresh_pg
from tests.cli.processes import pg_execute
from tests.observability.conftest import http_get

NAMES = (
    "conveyor_info", "conveyor_builds_finished", "conveyor_build_duration_seconds",
    "conveyor_jobs_finished", "conveyor_job_duration_seconds", "conveyor_job_queue_seconds",
    "conveyor_dependency_release_seconds", "conveyor_log_lines_ingested",
    "conveyor_k8s_api_errors", "conveyor_actors", "conveyor_builds_running",
    "conveyor_jobs_running", "conveyor_queue_depth", "process_cpu_seconds",
)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def _server_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == THREAD_NAME]


def test_metrics_and_probes_are_served_over_http(tmp_path: Path, fresh: metrics.Metrics) -> None:
    with engine(tmp_path, metrics_listen="127.0.0.1:0") as eng:
        obs = eng.runtime.observability
        assert obs is not None and obs.port > 0
        base = f"http://{obs.address}"
        assert eng.run("jobs:\n  a: {steps: [{run: 'echo hi'}]}\n").status == "SUCCEEDED"
        metrics.k8s_api_error("CREATE", 409)

        code, content_type, body = http_get(base + "/metrics")
        assert code == 200 and content_type.startswith("text/plain"), (code, content_type)
        families = {f.name: f for f in text_string_to_metric_families(body)}
        assert sorted(set(NAMES) - set(families)) == []
        samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
                   for f in families.values() for s in f.samples}
        assert samples[("conveyor_builds_finished_total", (("status", "SUCCEEDED"),))] == 1
        assert samples[("conveyor_jobs_finished_total", (("status", "SUCCEEDED"),))] == 1
        errors = ("conveyor_k8s_api_errors_total", (("code", "409"), ("verb", "create")))
        assert samples[errors] == 1
        assert samples[("conveyor_actors", (("kind", "Supervisor"),))] == 1
        assert samples[("conveyor_queue_depth", ())] == 0
        assert samples[("conveyor_info", (("role", "all"), ("version", "0.1.0")))] == 1

        assert http_get(base + "/healthz")[::2] == (200, '{"status": "ok"}\n')
        code, content_type, body = http_get(base + "/readyz")
        assert (code, content_type, json.loads(body)) == (200, "application/json",
                                                          {"status": "ok"})
        assert http_get(base + "/nothing")[0] == 404

        eng.runtime.stopping.set()  # what SIGTERM does first: leave the Service's endpoints
        code, _, body = http_get(base + "/readyz")
        assert code == 503 and json.loads(body)["reasons"] == {"shutdown": "shutting down"}
        assert http_get(base + "/healthz")[0] == 200
        assert len(_server_threads()) == 1
    assert _server_threads() == []


def test_healthz_fails_when_the_supervisor_is_gone(tmp_path: Path, fresh: metrics.Metrics) -> None:
    with engine(tmp_path, metrics_listen="127.0.0.1:0") as eng:
        obs = eng.runtime.observability
        assert obs is not None and eng.runtime.supervisor is not None
        eng.runtime.supervisor.stop(block=True, timeout=30)
        code, _, body = http_get(f"http://{obs.address}/healthz")
        assert code == 503
        assert json.loads(body)["reasons"] == {"supervisor": "the supervisor is dead"}


@pytest.mark.postgres
def test_readyz_is_503_when_the_database_is_unreachable(fresh_pg: str,
                                                        fresh: metrics.Metrics) -> None:
    # The pipeline role runs no actors, so nothing else touches the dead database.
    config = replace(
        Config.from_env(env={"CONVEYOR_INTERNAL_TOKEN": "secret"}, role="all",
                        database_url=fresh_pg, queue_url="memory://", listen="127.0.0.1:0",
                        metrics_listen="127.0.0.1:0", migrate_on_start=True),
        role="pipeline", executor_addr=f"127.0.0.1:{_closed_port()}")
    name = fresh_pg.rsplit("/", 1)[1]
    maintenance = fresh_pg.rsplit("/", 1)[0] + "/postgres"
    runtime = Runtime(config)
    try:
        runtime.start()
        assert runtime.observability is not None
        base = f"http://{runtime.observability.address}"
        assert http_get(base + "/readyz")[0] == 200
        pg_execute(maintenance, f"ALTER DATABASE {name} ALLOW_CONNECTIONS false",
                   "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                   f"WHERE datname = '{name}'")
        code, content_type, body = http_get(base + "/readyz")
        assert (code, content_type) == (503, "application/json")
        reasons = json.loads(body)["reasons"]
        assert list(reasons) == ["database"]
        assert reasons["database"].startswith("database unreachable:"), reasons
        assert http_get(base + "/healthz")[0] == 200  # alive: restarting would not help
    finally:
        runtime.stop()
        pg_execute(maintenance, f"ALTER DATABASE {name} ALLOW_CONNECTIONS true")


def test_a_busy_metrics_port_is_a_clear_start_error(tmp_path: Path, fresh: metrics.Metrics) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ListenFailed, match=rf"127.0.0.1:{port} \(CONVEYOR_METRICS_LISTEN"), \
                engine(tmp_path, metrics_listen=f"127.0.0.1:{port}"):
            pass


@pytest.mark.parametrize("text", ["9090", "host:", "host:port", "h:70000", ""])
def test_listen_addresses_are_checked(text: str) -> None:
    with pytest.raises(ListenError, match="CONVEYOR_METRICS_LISTEN must be host:port"):
        parse_listen(text)


def test_listen_addresses_parse() -> None:
    assert parse_listen("0.0.0.0:9090") == ("0.0.0.0", 9090)
    assert parse_listen("[::]:9090") == ("::", 9090)
    assert parse_listen(":0") == ("0.0.0.0", 0)


def _fake_runtime(depth: int, *, executor: bool = False) -> Any:
    return SimpleNamespace(
        config=SimpleNamespace(runs_executor=executor), supervisor=None,
        fatal=threading.Event(), fatal_reason="", stopping=threading.Event(),
        server=object(), port=1, queue=SimpleNamespace(depth=lambda: depth),
        saturation=lambda: None)


def test_readiness_names_the_queue_when_the_broker_cannot_say() -> None:
    probes = RuntimeProbes(_fake_runtime(-1))
    result = probes.ready()
    assert not result.ok
    assert result.reasons["queue"] == "the queue broker does not answer"


def test_liveness_fails_on_a_fatal_runtime_and_a_missing_supervisor() -> None:
    runtime = _fake_runtime(0, executor=True)
    runtime.fatal.set()
    runtime.fatal_reason = "service actor 'log' crashed 6 times"
    result = RuntimeProbes(runtime).live()
    assert result.reasons == {"fatal": "service actor 'log' crashed 6 times",
                              "supervisor": "the supervisor has not started"}


def test_a_raising_check_fails_with_its_exception() -> None:
    def boom() -> str | None:
        raise OSError("no route to host")

    result = run_checks({"ok": lambda: None, "net": boom})
    assert not result.ok and result.reasons == {"net": "OSError: no route to host"}
