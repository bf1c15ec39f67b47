"""The layer contracts (pyproject.toml [tool.importlinter], run by `make lint`) hold on
the tree, and each forbidden import added to a scratch copy breaks its contract."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"
CONFIG = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]


def lint_imports(tree: Path) -> subprocess.CompletedProcess[str]:
    # PYTHONPATH first: the editable install would otherwise find the real packages.
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.run([str(LINT_IMPORTS), "--no-cache", "--no-logo"], cwd=tree, env=env,
                          capture_output=True, text=True, timeout=120)


@pytest.fixture
def scratch(tmp_path: Path) -> Path:
    """A copy of every package the contracts read, and their configuration."""
    tree = tmp_path / "tree"
    tree.mkdir()
    shutil.copy(ROOT / "pyproject.toml", tree)
    for package in CONFIG["root_packages"]:
        shutil.copytree(ROOT / package, tree / package,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return tree


def test_the_tree_keeps_every_contract() -> None:
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(CONFIG['contracts'])} kept, 0 broken" in result.stdout


def test_the_engine_contract_names_every_engine_module() -> None:
    contract = next(c for c in CONFIG["contracts"] if c["id"] == "engine-no-backend")
    engine = {f"actors.{p.stem}" for p in (ROOT / "actors").glob("*.py") if p.stem != "__init__"}
    assert set(contract["source_modules"]) == engine


def test_the_scratch_copy_keeps_them_too(scratch: Path) -> None:
    """So a broken contract below is the added import's doing, not the copy's."""
    result = lint_imports(scratch)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(("module", "line", "contract"), [
    ("workflow/dag.py", "import pykka", "workflow-pure"),
    ("workflow/dag.py", "from store import db", "workflow-pure"),
    ("workflow/validate_reader.py", "from workflow import validate", "workflow-acyclic"),
    ("store/users.py", "from rpc import tokens", "store-on-workflow"),
    ("broker/memory.py", "import workflow", "broker-alone"),
    ("k8s/client.py", "from observability import metrics", "k8s-alone"),
    ("actors/backends/kubernetes/watch.py", "import urllib3", "kubernetes-in-k8s"),
    ("cli/main.py", "import pika", "pika-in-broker"),
    ("runtime/__init__.py", "import peewee", "peewee-in-store"),
    ("rpc/convert.py", "from actors import base", "rpc-not-engine"),
    ("observability/probes.py", "from runtime import Runtime", "observability-below"),
    ("rpc/server.py", "from support import services", "product-no-tools"),
    ("actors/build_actor.py", "from actors.backends import local", "engine-no-backend"),
    ("bench/engine.py", "from tests import services", "nothing-imports-tests"),
])
def test_a_forbidden_import_breaks_its_contract(scratch: Path, module: str, line: str,
                                                 contract: str) -> None:
    path = scratch / module
    text = path.read_text()
    # After the docstring and `from __future__`, which must stay first.
    head, future, rest = text.partition("from __future__ import annotations\n")
    assert future, f"{module} has no `from __future__ import annotations` to follow"
    path.write_text(f"{head}{future}{line}  # noqa\n{rest}")
    result = lint_imports(scratch)
    assert result.returncode == 1, result.stdout + result.stderr
    names = {c["id"]: c["name"] for c in CONFIG["contracts"]}
    broken = [c for c in names if f"{names[c]} BROKEN" in " ".join(result.stdout.split())]
    assert broken == [contract], result.stdout
