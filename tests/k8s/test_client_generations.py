"""The same smoke run under client 37 (this venv) and client 36 (a venv of its own,
cached under ~/.cache/conveyor): the two generations differ on the wire."""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from support.k8s_emulator import Emulator, Settings

SCRIPT = Path(__file__).with_name("clients.py")
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "conveyor"


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"client 36 venv unavailable under CI=true: {reason}")
    pytest.skip(f"CLIENT 36 SMOKE TESTS SKIPPED: {reason}")


@pytest.fixture(scope="session")
def client36_python() -> Path:
    venv = CACHE / "k8s-client-36"
    python = venv / "bin" / "python"
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / "k8s-client-36.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another session may be building it
        probe = [str(python), "-c", "import kubernetes as k; print(k.__version__)"]
        if python.exists():
            done = subprocess.run(probe, capture_output=True, text=True, check=False)
            if done.returncode == 0 and done.stdout.startswith("36."):
                return python
        made = subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)],
                              capture_output=True, text=True, check=False)
        if made.returncode != 0:
            _unavailable(f"cannot create a venv: {made.stderr.strip()[-300:]}")
        pip = subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check",
             "kubernetes==36.*"],
            capture_output=True, text=True, check=False, timeout=600,
        )
        if pip.returncode != 0:
            _unavailable(f"pip cannot install kubernetes==36.*: {pip.stderr.strip()[-300:]}")
        return python


def _smoke(python: Path | str, tmp_path: Path) -> dict[str, object]:
    with Emulator(tmp_path / "emu", settings=Settings(history_limit=8, bookmark_interval_s=0.2,
                                                      grace_cap_s=1.0)) as emu:
        done = subprocess.run([str(python), str(SCRIPT), emu.url], capture_output=True,
                              text=True, timeout=120, check=False)
        assert done.returncode == 0, done.stderr[-3000:]
        assert emu.live_pids() == []
        by_route = emu.stats()["by_route"]
    result: dict[str, object] = json.loads(done.stdout)
    result["routes"] = by_route
    return result


def _check_common(result: dict[str, object]) -> None:
    assert result["phases"] == ["Pending", "Running", "Failed"]
    assert result["exit_code"] == 3
    assert result["log"] == "one\ntwo\n"
    assert result["duplicate_status"] == 409
    assert result["bookmarks"] == ["BOOKMARK"]
    assert result["expired_status"] == 410
    assert result["sleeper_pod_deleted"] is True
    assert result["job_conditions"] == ["FailureTarget", "Failed"]


@pytest.mark.slow
def test_client_36_smoke(client36_python: Path, tmp_path: Path) -> None:
    result = _smoke(client36_python, tmp_path)
    _check_common(result)
    assert result["delete_job_type"] == "V1Status"


def test_client_37_smoke(tmp_path: Path) -> None:
    result = _smoke(sys.executable, tmp_path)
    _check_common(result)
    assert result["delete_job_type"] == "dict"
