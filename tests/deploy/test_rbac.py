"""The executor's Role grants exactly the Kubernetes calls the backend makes.

"Needs" are read from the backend's source (k8s/*.py, actors/backends/kubernetes/*.py): every
``<verb>_namespaced_<resource>`` method of the official client it names, a ``list``
with ``watch=True`` (or handed to ``Watch().stream``) being a ``watch``.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from tests.deploy.conftest import ROOT, one
from tests.deploy.kustomize import Obj

Grant = tuple[str, str, str]  # (API group, resource, verb)

METHOD = re.compile(r"^(create|read|list|delete|patch|replace|deletecollection)_namespaced_"
                    r"([a-z_]+)$")
VERBS = {"create": "create", "read": "get", "list": "list", "delete": "delete",
         "patch": "patch", "replace": "update", "deletecollection": "deletecollection"}
RESOURCES = {  # client method suffix -> (API group, resource)
    "job": ("batch", "jobs"),
    "job_status": ("batch", "jobs/status"),
    "pod": ("", "pods"),
    "pod_log": ("", "pods/log"),
    "pod_status": ("", "pods/status"),
    "event": ("", "events"),
    "config_map": ("", "configmaps"),
    "secret": ("", "secrets"),
}


def backend_files() -> list[Path]:
    wing = ROOT / "actors" / "backends" / "kubernetes"
    files = sorted((ROOT / "k8s").glob("*.py")) + sorted(wing.glob("*.py"))
    backend = (ROOT / "k8s" / "client.py", wing / "actor.py")
    if not any(path.exists() for path in backend):
        raise AssertionError(
            "the Kubernetes backend (k8s/client.py, actors/backends/kubernetes/actor.py) is not "
            "there: the Role in deploy/base/executor-rbac.yaml cannot be checked against it")
    return files


def _names(node: ast.AST) -> list[str]:
    if isinstance(node, ast.Attribute):
        return [node.attr]
    if isinstance(node, ast.Name):
        return [node.id]
    return []


def _is_watch(call: ast.Call) -> bool:
    for keyword in call.keywords:
        if keyword.arg == "watch" and isinstance(keyword.value, ast.Constant):
            return bool(keyword.value.value)
    return isinstance(call.func, ast.Attribute) and call.func.attr == "stream"


def needed_grants(files: list[Path]) -> dict[Grant, list[str]]:
    """Each grant the source needs, with where (file:line) it is needed."""
    needs: dict[Grant, list[str]] = {}
    for path in files:
        tree = ast.parse(path.read_text(), str(path))
        for call in (n for n in ast.walk(tree) if isinstance(n, ast.Call)):
            candidates = [call.func, *call.args, *(k.value for k in call.keywords)]
            for name in (n for node in candidates for n in _names(node)):
                where = f"{path.name}:{call.lineno}"
                assert "_for_all_namespaces" not in name, (
                    f"{where}: {name} needs a ClusterRole; Conveyor stays in its namespace")
                match = METHOD.match(name)
                if match is None:
                    continue
                action, suffix = match.groups()
                assert suffix in RESOURCES, (
                    f"{where}: {name}: map {suffix!r} in tests/deploy/test_rbac.py RESOURCES "
                    "and grant it in deploy/base/executor-rbac.yaml")
                verb = "watch" if action == "list" and _is_watch(call) else VERBS[action]
                group, resource = RESOURCES[suffix]
                needs.setdefault((group, resource, verb), []).append(where)
    return needs


def granted(role: Obj) -> set[Grant]:
    return {(group, resource, verb)
            for rule in role["rules"]
            for group in rule["apiGroups"]
            for resource in rule["resources"]
            for verb in rule["verbs"]}


def test_the_role_grants_exactly_what_the_backend_calls(overlay: list[Obj]) -> None:
    needs = needed_grants(backend_files())
    assert needs, "found no Kubernetes API call in the backend's source"
    have = granted(one(overlay, "Role", "conveyor-executor"))
    missing = {grant: needs[grant] for grant in sorted(set(needs) - have)}
    assert not missing, f"the executor's Role lacks (add to executor-rbac.yaml): {missing}"
    extra = sorted(have - set(needs))
    assert not extra, f"the executor's Role grants calls the backend never makes: {extra}"


def test_the_role_has_no_wildcards_and_reads_no_secrets(overlay: list[Obj]) -> None:
    role = one(overlay, "Role", "conveyor-executor")
    for group, resource, verb in granted(role):
        assert "*" not in (group, resource, verb)
        assert resource not in ("secrets", "serviceaccounts/token", "roles", "rolebindings")


def test_the_source_reading_sees_watches_and_logs(tmp_path: Path) -> None:
    source = tmp_path / "client.py"
    source.write_text(
        "def f(core, batch, w, call):\n"
        "    call('x', batch.create_namespaced_job, 'ns', {})\n"
        "    call('y', core.list_namespaced_pod, 'ns', watch=True)\n"
        "    core.list_namespaced_pod('ns', label_selector='a=b')\n"
        "    w.stream(core.list_namespaced_event, 'ns')\n"
        "    core.read_namespaced_pod_log('p', 'ns', follow=True)\n")
    assert set(needed_grants([source])) == {
        ("batch", "jobs", "create"), ("", "pods", "watch"), ("", "pods", "list"),
        ("", "events", "watch"), ("", "pods/log", "get")}
