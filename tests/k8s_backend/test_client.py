"""Error wrapping, the retry policy, Job naming for retries, and the backend's config."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator

import pytest
import urllib3
from kubernetes.client.exceptions import ApiException

from actors.backends.kubernetes.tracker import attempt_job_name
from k8s.client import (
    KubeConfigError,
    KubeError,
    Stream,
    load_configuration,
    retrying,
    translated,
    wrap,
)
from k8s.manifests import job_name
from observability import metrics
from runtime import Config, ConfigError, parse_image_map


def api_exception(status: int, reason: str, message: str,
                  headers: dict[str, str] | None = None) -> ApiException:
    exc = ApiException(status=status, reason="HTTP reason")
    exc.body = json.dumps({"kind": "Status", "reason": reason, "message": message})
    exc.headers = headers or {}
    return exc


def test_api_exceptions_keep_the_servers_reason_and_message() -> None:
    err = wrap(api_exception(409, "AlreadyExists", 'jobs "x" already exists'), "create job")
    assert (err.status, err.reason, err.message) == (409, "AlreadyExists",
                                                     'jobs "x" already exists')
    assert err.conflict and not err.transient
    assert str(err) == 'create job: HTTP 409 AlreadyExists: jobs "x" already exists'


@pytest.mark.parametrize(("status", "transient"), [(500, True), (503, True), (429, True),
                                                   (400, False), (403, False), (404, False)])
def test_transient_statuses(status: int, transient: bool) -> None:
    assert wrap(api_exception(status, "R", "m")).transient is transient


def test_connection_errors_are_transient_and_retry_after_is_read() -> None:
    refused = wrap(urllib3.exceptions.NewConnectionError(None, "refused"))  # type: ignore[arg-type]
    assert refused.status == 0 and refused.transient
    throttled = wrap(api_exception(429, "TooManyRequests", "slow down", {"Retry-After": "3"}))
    assert throttled.retry_after_s == 3.0


def test_retrying_retries_transient_errors_then_gives_up() -> None:
    calls: list[int] = []
    seen: list[KubeError] = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise KubeError(500, "InternalError", "boom")
        return "ok"

    assert retrying(base_s=0.001, on_retry=seen.append)(flaky) == "ok"
    assert len(calls) == 3 and len(seen) == 2

    def always() -> None:
        calls.append(1)
        raise KubeError(503, "ServiceUnavailable", "down")

    calls.clear()
    with pytest.raises(KubeError, match="down"):
        retrying(attempts=4, base_s=0.001)(always)
    assert len(calls) == 4


def test_permanent_errors_are_not_retried() -> None:
    calls: list[int] = []

    def forbidden() -> None:
        calls.append(1)
        raise KubeError(403, "Forbidden", "no")

    with pytest.raises(KubeError):
        retrying(base_s=0.001)(forbidden)
    assert calls == [1]


def test_cancel_ends_the_retries() -> None:
    cancel = threading.Event()
    calls: list[int] = []

    def failing() -> None:
        calls.append(1)
        cancel.set()
        raise KubeError(500, "InternalError", "boom")

    with pytest.raises(KubeError):
        retrying(base_s=10.0, cancel=cancel)(failing)
    assert calls == [1]


def test_retry_job_names_are_valid_and_never_collide_with_attempts() -> None:
    key = "a-very-long-job-key-with-a-matrix (ubuntu-latest, python 3.12, extra)"
    names = {attempt_job_name(123456, key, attempt, retry)
             for attempt in (1, 2) for retry in (0, 1, 2)}
    assert len(names) == 6
    assert attempt_job_name(123456, key, 1, 0) == job_name(123456, key, 1)
    for name in names:
        assert len(name) <= 63 and name[0].isalnum() and name[-1].isalnum(), name
    assert attempt_job_name(7, "lint", 1, 2) == job_name(7, "lint", 1) + "-r2"


def test_image_map_parsing() -> None:
    assert parse_image_map("V", "ubuntu-latest=ubuntu:24.04, alpine = alpine:3.20,") == {
        "ubuntu-latest": "ubuntu:24.04", "alpine": "alpine:3.20"}
    with pytest.raises(ConfigError, match=r"V: entry 2 \('oops'\) must be LABEL=IMAGE"):
        parse_image_map("V", "a=b,oops")
    with pytest.raises(ConfigError, match="mapped twice"):
        parse_image_map("V", "a=b,a=c")


def test_config_reads_the_kubernetes_variables() -> None:
    cfg = Config.from_env({
        "CONVEYOR_BACKEND": "kubernetes", "CONVEYOR_NAMESPACE": "ci",
        "CONVEYOR_K8S_URL": "http://127.0.0.1:1", "CONVEYOR_DEFAULT_IMAGE": "debian:12",
        "CONVEYOR_RUNS_ON_IMAGES": "ubuntu-latest=ubuntu:24.04",
        "CONVEYOR_K8S_PENDING_TIMEOUT_S": "30", "CONVEYOR_DATABASE_URL": "sqlite:///x.db",
    })
    assert (cfg.backend, cfg.namespace, cfg.k8s_url, cfg.image) == (
        "kubernetes", "ci", "http://127.0.0.1:1", "debian:12")
    assert cfg.runs_on_images == {"ubuntu-latest": "ubuntu:24.04"}
    assert cfg.k8s_pending_timeout_s == 30.0


def test_no_cluster_configured_is_a_clear_error(tmp_path: object,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with pytest.raises(KubeConfigError, match="CONVEYOR_K8S_URL or KUBECONFIG"):
        load_configuration(kubeconfig=f"{tmp_path}/missing-kubeconfig")
    cfg = load_configuration(url="http://127.0.0.1:9/")
    assert cfg.host == "http://127.0.0.1:9" and cfg.retries is False


def test_api_errors_are_counted_except_the_answers_the_backend_expects() -> None:
    m = metrics.reset()

    def fails(status: int) -> None:
        raise ApiException(status=status, reason="x")

    for status in (500, 409, 404, 429):
        with pytest.raises(KubeError):
            translated("create job", fails, status, on_error=metrics.k8s_api_error)

    def refused() -> None:
        raise urllib3.exceptions.NewConnectionError(None, "refused")  # type: ignore[arg-type]

    with pytest.raises(KubeError):
        translated("list pods", refused, on_error=metrics.k8s_api_error)
    counted = {
        (s.labels["verb"], s.labels["code"]): s.value
        for family in m.registry.collect() if family.name == "conveyor_k8s_api_errors"
        for s in family.samples if s.name.endswith("_total")
    }
    assert counted == {("create", "500"): 1, ("create", "429"): 1, ("list", "connection"): 1}


def test_a_stream_that_breaks_while_read_is_a_kube_error() -> None:
    """The backend's readers catch KubeError only: urllib3 stays inside k8s/."""

    class Broken:
        def stream(self, _size: int, decode_content: bool) -> Iterator[bytes]:
            yield b"first"
            raise urllib3.exceptions.ProtocolError("Connection broken: reset")

    chunks = Stream(Broken(), "read log").chunks()
    assert next(chunks) == b"first"
    with pytest.raises(KubeError) as caught:
        next(chunks)
    assert caught.value.status == 0 and caught.value.transient
    assert str(caught.value) == "read log: ProtocolError: Connection broken: reset"
