"""A small kustomize renderer for the features deploy/ uses, so the manifests can be
checked where no kustomize binary exists (and cross-checked where ``kubectl`` does).

Supported: ``resources`` (files and directories), ``namespace``, ``images``,
``labels`` without selectors/templates, and ``patches`` by path (a strategic merge of
maps; lists are replaced). Anything else is an error, never silently ignored.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

Obj = dict[str, Any]

CLUSTER_SCOPED = frozenset({"Namespace", "ClusterRole", "ClusterRoleBinding",
                            "CustomResourceDefinition", "PersistentVolume", "StorageClass",
                            "PriorityClass", "IngressClass"})
_FIELDS = frozenset({"apiVersion", "kind", "namespace", "resources", "images", "patches",
                     "labels"})


class KustomizeError(ValueError):
    """The kustomization uses something this renderer does not implement, or is wrong."""


def load_documents(path: Path) -> list[Obj]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def render(directory: Path) -> list[Obj]:
    """The objects ``kustomize build directory`` would print (order aside)."""
    spec = yaml.safe_load((directory / "kustomization.yaml").read_text())
    unknown = sorted(set(spec) - _FIELDS)
    if unknown:
        raise KustomizeError(f"{directory}/kustomization.yaml: fields not supported by "
                             f"tests/deploy/kustomize.py: {unknown}")
    objects: list[Obj] = []
    for entry in spec.get("resources", []):
        path = directory / entry
        objects += render(path) if path.is_dir() else load_documents(path)
    for patch in spec.get("patches", []):
        if set(patch) != {"path"}:
            raise KustomizeError(f"{directory}: only `patches: [{{path: …}}]` is supported")
        for doc in load_documents(directory / patch["path"]):
            _merge(_find(objects, doc, directory), doc)
    for label in spec.get("labels", []):
        if label.get("includeSelectors") or label.get("includeTemplates"):
            raise KustomizeError(f"{directory}: labels into selectors/templates unsupported")
        for obj in objects:
            obj["metadata"].setdefault("labels", {}).update(label["pairs"])
    for image in spec.get("images", []):
        for obj in objects:
            for container in containers(obj):
                if _image_name(container["image"]) == image["name"]:
                    container["image"] = f"{image.get('newName', image['name'])}:{image['newTag']}"
    if "namespace" in spec:
        _set_namespace(objects, spec["namespace"])
    return objects


def pod_spec(obj: Obj) -> Obj | None:
    if obj["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job", "ReplicaSet"):
        spec: Obj = obj["spec"]["template"]["spec"]
        return spec
    return None


def containers(obj: Obj) -> list[Obj]:
    spec = pod_spec(obj)
    if spec is None:
        return []
    return [*spec.get("initContainers", []), *spec.get("containers", [])]


def _image_name(image: str) -> str:
    name = image.split("@", 1)[0]
    head, _, tail = name.rpartition(":")
    return head if head and "/" not in tail else name


def _find(objects: list[Obj], patch: Obj, where: Path) -> Obj:
    key = (patch["kind"], patch["metadata"]["name"])
    found = [o for o in objects if (o["kind"], o["metadata"]["name"]) == key]
    if len(found) != 1:
        raise KustomizeError(f"{where}: patch target {key} matches {len(found)} objects")
    return found[0]


def _merge(target: Obj, patch: Obj) -> None:
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        else:
            target[key] = copy.deepcopy(value)


def _set_namespace(objects: list[Obj], namespace: str) -> None:
    for obj in objects:
        if obj["kind"] not in CLUSTER_SCOPED:
            obj["metadata"]["namespace"] = namespace
        if obj["kind"] in ("RoleBinding", "ClusterRoleBinding"):
            for subject in obj.get("subjects", []):
                if subject.get("kind") == "ServiceAccount":
                    subject["namespace"] = namespace
