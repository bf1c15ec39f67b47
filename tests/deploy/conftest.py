"""Rendered deploy/ manifests, shared by the deploy tests."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.deploy.kustomize import Obj, render

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
OVERLAY = DEPLOY / "overlays" / "example"
MIGRATE = OVERLAY / "migrate"


@pytest.fixture(scope="module")
def overlay() -> list[Obj]:
    return render(OVERLAY)


@pytest.fixture(scope="module")
def migrate() -> list[Obj]:
    return render(MIGRATE)


def one(objects: list[Obj], kind: str, name: str) -> Obj:
    found = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name!r}, found {len(found)}"
    return found[0]


def kubectl_kustomize(directory: Path) -> list[Obj]:
    """``kubectl kustomize`` (kustomize built in); skip loudly without it, fail under CI."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        message = "kubectl is not installed: the real kustomize cannot cross-check deploy/"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{message} (CI=true)")
        pytest.skip(f"!!! SKIPPED: {message}")
    out = subprocess.run([kubectl, "kustomize", str(directory)], capture_output=True,
                         text=True, timeout=60, check=False)
    assert out.returncode == 0, out.stderr
    return [doc for doc in yaml.safe_load_all(out.stdout) if doc]
