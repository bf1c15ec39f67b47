"""deploy/: the kustomize overlay renders, validates offline against Kubernetes 1.37 and
keeps the conventions (security, probes, resources, config, service discovery)."""

from __future__ import annotations

import re
from pathlib import Path

import kubernetes_validate
import pytest

from observability.server import parse_listen
from runtime import Config
from tests.deploy.conftest import DEPLOY, MIGRATE, OVERLAY, ROOT, kubectl_kustomize, one
from tests.deploy.kustomize import Obj, containers, load_documents, pod_spec, render

K8S_VERSION = "1.37.0"
SETTING = re.compile(r"\bCONVEYOR_[A-Z0-9_]*[A-Z0-9]\b")
# Where the program reads settings from (tests only set them).
SOURCE_DIRS = ("workflow", "actors", "rpc", "store", "k8s", "broker", "cli", "observability",
               "runtime", "runtime_config")


def known_settings() -> set[str]:
    """Every CONVEYOR_* name the program's source mentions."""
    files = [p for d in SOURCE_DIRS for p in (ROOT / d).rglob("*.py")]
    return {name for f in files for name in SETTING.findall(f.read_text())}


def _key(obj: Obj) -> tuple[str, str, str]:
    return obj["kind"], obj["metadata"].get("namespace", ""), obj["metadata"]["name"]


@pytest.mark.parametrize("directory", [OVERLAY, MIGRATE], ids=["example", "migrate"])
def test_our_renderer_agrees_with_kustomize(directory: Path) -> None:
    ours = {_key(o): o for o in render(directory)}
    theirs = {_key(o): o for o in kubectl_kustomize(directory)}
    assert sorted(ours) == sorted(theirs)
    for key, obj in ours.items():
        assert obj == theirs[key], key


@pytest.mark.parametrize("directory", [OVERLAY, MIGRATE, DEPLOY / "base"],
                         ids=["example", "migrate", "base"])
def test_every_manifest_is_valid_for_kubernetes(directory: Path) -> None:
    objects = render(directory)
    assert objects
    for obj in objects:
        try:
            kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{obj['kind']} {obj['metadata']['name']}: {exc.message} at "
                        f"{'/'.join(map(str, exc.path))}")


def test_the_overlay_holds_the_expected_objects(overlay: list[Obj]) -> None:
    assert sorted((o["kind"], o["metadata"]["name"]) for o in overlay) == [
        ("ConfigMap", "conveyor-config"),
        ("Deployment", "conveyor-executor"),
        ("Deployment", "conveyor-pipeline"),
        ("Namespace", "conveyor"),
        ("Role", "conveyor-executor"),
        ("RoleBinding", "conveyor-executor"),
        ("Service", "conveyor"),
        ("Service", "conveyor-executor"),
        ("ServiceAccount", "conveyor-executor"),
        ("ServiceAccount", "conveyor-pipeline"),
    ]
    assert {o["metadata"].get("namespace") for o in overlay if o["kind"] != "Namespace"} == {
        "conveyor"}
    assert one(overlay, "Deployment", "conveyor-executor")["spec"]["replicas"] == 3
    assert one(overlay, "ConfigMap", "conveyor-config")["data"]["CONVEYOR_MAX_JOBS"] == "128"


def _workloads(objects: list[Obj]) -> list[Obj]:
    return [o for o in objects if pod_spec(o) is not None]


def test_pods_run_least_privileged(overlay: list[Obj], migrate: list[Obj]) -> None:
    for obj in _workloads(overlay + migrate):
        name = obj["metadata"]["name"]
        spec = pod_spec(obj)
        assert spec is not None
        pod = spec["securityContext"]
        assert pod["runAsNonRoot"] is True and pod["runAsUser"] > 0, name
        assert pod["seccompProfile"] == {"type": "RuntimeDefault"}, name
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        for container in containers(obj):
            sc = container["securityContext"]
            assert sc["allowPrivilegeEscalation"] is False, name
            assert sc["readOnlyRootFilesystem"] is True, name
            assert sc["capabilities"] == {"drop": ["ALL"]}, name
            tmp = [m for m in container["volumeMounts"] if m["mountPath"] == "/tmp"]
            assert len(tmp) == 1 and "emptyDir" in volumes[tmp[0]["name"]], name
            resources = container["resources"]
            assert {"cpu", "memory"} <= set(resources["requests"]), name
            assert "memory" in resources["limits"], name
            assert container["image"] == "registry.example.com/conveyor:0.1.0", name


def test_only_the_executor_gets_an_api_token(overlay: list[Obj], migrate: list[Obj]) -> None:
    tokens = {o["metadata"]["name"]: pod_spec(o)["automountServiceAccountToken"]  # type: ignore[index]
              for o in _workloads(overlay + migrate)}
    assert tokens == {"conveyor-executor": True, "conveyor-pipeline": False,
                      "conveyor-migrate": False}
    executor = pod_spec(one(overlay, "Deployment", "conveyor-executor"))
    assert executor is not None and executor["serviceAccountName"] == "conveyor-executor"
    binding = one(overlay, "RoleBinding", "conveyor-executor")
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                                  "name": "conveyor-executor"}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "conveyor-executor",
                                    "namespace": "conveyor"}]


@pytest.mark.parametrize(("name", "role"), [("conveyor-pipeline", "pipeline"),
                                            ("conveyor-executor", "executor")])
def test_deployments_serve_their_role_with_probes_on_the_metrics_port(
        overlay: list[Obj], name: str, role: str) -> None:
    (container,) = containers(one(overlay, "Deployment", name))
    assert container["args"] == ["serve", "--role", role]
    config = one(overlay, "ConfigMap", "conveyor-config")["data"]
    metrics_port = int(config["CONVEYOR_METRICS_LISTEN"].rsplit(":", 1)[1])
    grpc_port = int(config["CONVEYOR_LISTEN"].rsplit(":", 1)[1])
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"metrics": metrics_port, "grpc": grpc_port}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
    # A liveness probe shorter than the 1 s supervisor ping would kill healthy pods.
    assert container["livenessProbe"]["timeoutSeconds"] > 1
    assert container["envFrom"] == [{"configMapRef": {"name": "conveyor-config"}},
                                    {"secretRef": {"name": "conveyor-secrets"}}]


def test_config_and_secret_keys_are_settings_conveyor_reads(overlay: list[Obj]) -> None:
    known = known_settings()
    assert {"CONVEYOR_DATABASE_URL", "CONVEYOR_METRICS_LISTEN", "CONVEYOR_LOG_FORMAT"} <= known
    config = set(one(overlay, "ConfigMap", "conveyor-config")["data"])
    assert sorted(config - known) == [], "ConfigMap keys Conveyor never reads"
    example = (OVERLAY / "secrets.env.example").read_text().splitlines()
    secret = {line.split("=", 1)[0] for line in example if line and not line.startswith("#")}
    assert sorted(secret - known) == [], "secret keys Conveyor never reads"
    assert {"CONVEYOR_DATABASE_URL", "CONVEYOR_AMQP_URL"} <= secret
    assert not config & secret, "a setting is both in the ConfigMap and the Secret"
    env = [e["name"] for o in _workloads(overlay) for c in containers(o) for e in c.get("env", [])]
    assert sorted(set(env) - known) == []


def test_the_pipeline_finds_every_executor_through_the_headless_service(
        overlay: list[Obj]) -> None:
    service = one(overlay, "Service", "conveyor-executor")
    assert service["spec"]["clusterIP"] == "None"
    grpc = next(p for p in service["spec"]["ports"] if p["name"] == "grpc")
    address = one(overlay, "ConfigMap", "conveyor-config")["data"]["CONVEYOR_EXECUTOR_ADDR"]
    assert address == f"dns:///conveyor-executor:{grpc['port']}"
    for svc_name, deployment in (("conveyor-executor", "conveyor-executor"),
                                 ("conveyor", "conveyor-pipeline")):
        svc = one(overlay, "Service", svc_name)
        labels = one(overlay, "Deployment", deployment)["spec"]["template"]["metadata"]["labels"]
        assert svc["spec"]["selector"].items() <= labels.items(), svc_name
        (container,) = containers(one(overlay, "Deployment", deployment))
        names = {p["name"] for p in container["ports"]}
        assert {p["targetPort"] for p in svc["spec"]["ports"]} <= names, svc_name


def test_executors_drain_before_the_kubelet_kills_them(overlay: list[Obj]) -> None:
    drain_s = float(one(overlay, "ConfigMap", "conveyor-config")["data"]["CONVEYOR_DRAIN_S"])
    spec = pod_spec(one(overlay, "Deployment", "conveyor-executor"))
    assert spec is not None and spec["terminationGracePeriodSeconds"] > drain_s + 10


def test_the_migration_job_runs_the_same_image_in_the_same_namespace(
        overlay: list[Obj], migrate: list[Obj]) -> None:
    (job,) = migrate
    assert job["kind"] == "Job" and job["metadata"]["namespace"] == "conveyor"
    (container,) = containers(job)
    assert container["args"] == ["db", "migrate"]
    (pipeline,) = containers(one(overlay, "Deployment", "conveyor-pipeline"))
    assert container["image"] == pipeline["image"]


def test_no_committed_secret_values() -> None:
    for path in DEPLOY.rglob("*.yaml"):
        for doc in load_documents(path):
            assert doc.get("kind") != "Secret", f"{path}: secrets are created by hand"


@pytest.mark.parametrize("role", ["pipeline", "executor"])
def test_the_config_is_accepted_by_the_runtime(overlay: list[Obj], role: str) -> None:
    env = dict(one(overlay, "ConfigMap", "conveyor-config")["data"])
    for line in (OVERLAY / "secrets.env.example").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            env[name] = value
    config = Config.from_env(env=env, role=role)
    assert (config.role, config.backend) == (role, "kubernetes")
    assert config.runs_on_images["ubuntu-latest"] == "ubuntu:24.04"
    assert parse_listen(config.metrics_listen) == ("0.0.0.0", 9090)
