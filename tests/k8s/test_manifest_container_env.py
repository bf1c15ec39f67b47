"""`container.env` in the Job manifest: the container's variables under the job's, and
the pod still validates against the Kubernetes schema with nothing shared with the node."""

from __future__ import annotations

from typing import Any

import kubernetes_validate
import pytest

from tests.k8s.test_manifests import manifest


def _container(job: dict[str, Any]) -> dict[str, Any]:
    container: dict[str, Any] = job["spec"]["template"]["spec"]["containers"][0]
    return container


def test_container_env_is_in_the_pod_and_the_job_env_wins() -> None:
    job = manifest(container_env={"NODE_ENV": "test", "CI": "container", "P": "$(HOME)"},
                   env={"CI": "true"})
    kubernetes_validate.validate(job, "1.37.0", strict=True)
    env = {e["name"]: e["value"] for e in _container(job)["env"]}
    assert env == {"NODE_ENV": "test", "CI": "true", "P": "$$(HOME)", "CONVEYOR_NO_REAP": "1"}


def test_the_pod_shares_nothing_with_the_node() -> None:
    pod = manifest()["spec"]["template"]["spec"]
    assert [pod[k] for k in ("hostNetwork", "hostPID", "hostIPC", "shareProcessNamespace",
                             "automountServiceAccountToken")] == [False] * 5


@pytest.mark.parametrize("bad", [{"A=B": "x"}, {"": "x"}, {"A": 1}])
def test_a_bad_container_env_is_named(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="container_env"):
        manifest(container_env=bad)
