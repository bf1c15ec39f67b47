"""The backend under the previous client generation (36: Python-style booleans and
Content-Type on the wire, other model classes): the kill -9 takeover scenario with the
executor processes importing kubernetes 36.

The cached client-36 venv (tests/k8s/test_client_generations.py) holds only the client,
so the executor runs on this project's venv with that venv's ``kubernetes`` (and the
``six`` it needs) put first on ``PYTHONPATH``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from support.k8s_emulator import Emulator
from tests.k8s.test_client_generations import client36_python  # noqa: F401  (fixture)
from tests.k8s_backend.test_takeover import ROOT, run_takeover


def client36_overlay(python36: Path, where: Path) -> Path:
    """A directory with only the client-36 packages, for the front of PYTHONPATH."""
    found = subprocess.run(
        [str(python36), "-c", "import kubernetes, six, os; "
         "print(os.path.dirname(kubernetes.__path__[0])); print(six.__file__)"],
        capture_output=True, text=True, check=True, timeout=60)
    site, six_file = found.stdout.split()
    where.mkdir()
    (where / "kubernetes").symlink_to(Path(site) / "kubernetes")
    (where / "six.py").symlink_to(six_file)
    return where


@pytest.mark.slow
def test_takeover_with_client_36(tmp_path: Path, emulator: Emulator,
                                 client36_python: Path) -> None:  # noqa: F811
    overlay = client36_overlay(client36_python, tmp_path / "client36")
    probe = subprocess.run(
        [sys.executable, "-c", "import kubernetes; print(kubernetes.__version__)"],
        env={"PYTHONPATH": str(overlay)}, cwd=ROOT, capture_output=True, text=True,
        check=True, timeout=60)
    assert probe.stdout.startswith("36."), probe.stdout
    run_takeover(tmp_path, emulator, extra_env={"PYTHONPATH": str(overlay)})
