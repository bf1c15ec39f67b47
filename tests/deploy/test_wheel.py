"""The wheel owns one top-level name: installed next to a distribution with top-level
`cli` and `store` modules, both work (README, Packaging).

The wheel is built from a copy of the tree (no build/ left in the checkout) with the
dev environment's setuptools, and installed with --no-deps into a fresh venv that
reaches the dev environment's dependencies through a .pth line (its .pth files, the
editable install's among them, are not run from there).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from pathlib import Path

import pytest

from tests.deploy.conftest import ROOT

PIP = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
OTHER_PYPROJECT = """\
[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "other-cli-store"
version = "1.0"

[tool.setuptools]
py-modules = ["cli", "store"]
"""


def shipped_packages() -> list[str]:
    include = tomllib.loads((ROOT / "pyproject.toml").read_text())[
        "tool"]["setuptools"]["packages"]["find"]["include"]
    return sorted({name.split(".")[0].rstrip("*") for name in include})


def run(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True,
                          timeout=300)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv holding the Conveyor wheel and a package with top-level cli and store."""
    tmp = tmp_path_factory.mktemp("wheel")
    source = tmp / "source"
    source.mkdir()
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy(ROOT / name, source)
    for package in shipped_packages():
        shutil.copytree(ROOT / package, source / package,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    other = tmp / "other"
    other.mkdir()
    (other / "pyproject.toml").write_text(OTHER_PYPROJECT)
    (other / "cli.py").write_text('WHO = "the other cli"\n')
    (other / "store.py").write_text('WHO = "the other store"\n')
    built = run(*PIP, "wheel", "--no-deps", "--no-index", "--no-build-isolation",
                "-w", tmp / "dist", source, other, cwd=tmp)
    assert built.returncode == 0, built.stderr
    venv = tmp / "venv"
    made = run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=tmp)
    assert made.returncode == 0, made.stderr
    purelib = run(venv / "bin" / "python", "-c",
                  "import sysconfig; print(sysconfig.get_paths()['purelib'])", cwd=tmp)
    (Path(purelib.stdout.strip()) / "dev_dependencies.pth").write_text(
        sysconfig.get_paths()["purelib"] + "\n")
    wheels = sorted((tmp / "dist").glob("*.whl"))
    done = run(*PIP, "--python", venv / "bin" / "python", "install", "--no-deps", "--no-index",
               *wheels, cwd=tmp)
    assert done.returncode == 0, done.stderr
    return venv


def test_the_wheel_has_one_top_level_name(installed: Path) -> None:
    wheel = next((installed.parent / "dist").glob("conveyor_ci-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    tops = {name.split("/")[0] for name in names}
    assert tops == {"conveyor_ci", next(t for t in tops if t.endswith(".dist-info"))}
    private = {name.split("/")[2] for name in names if name.startswith("conveyor_ci/_lib/")}
    assert private == set(shipped_packages()) - {"conveyor_ci"}


def test_conveyor_runs_next_to_another_cli_and_store(installed: Path, tmp_path: Path) -> None:
    conveyor = installed / "bin" / "conveyor"
    helped = run(conveyor, "--help", cwd=tmp_path)
    assert helped.returncode == 0 and "usage: conveyor" in helped.stdout, helped.stderr
    valid = run(conveyor, "validate", ROOT / "examples" / "hello.yaml", cwd=tmp_path)
    assert valid.returncode == 0, valid.stderr
    ran = run(conveyor, "run", ROOT / "examples" / "hello.yaml", cwd=tmp_path)
    assert ran.returncode == 0 and "SUCCEEDED" in ran.stdout + ran.stderr, ran.stderr


def test_the_other_package_keeps_its_names(installed: Path, tmp_path: Path) -> None:
    python = installed / "bin" / "python"
    theirs = run(python, "-c", "import cli, store; print(cli.WHO, '/', store.WHO)",
                 cwd=tmp_path)
    assert theirs.stdout.strip() == "the other cli / the other store", theirs.stderr
    ours = run(python, "-c", "import workflow", cwd=tmp_path)
    assert "No module named 'workflow'" in ours.stderr
