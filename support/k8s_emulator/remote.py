"""Driving an emulator that runs as a separate process: start it, and call its
``/_emulator/`` endpoints with the same method names as ``Emulator``."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from support.k8s_emulator.faults import DEFAULT_UNSCHEDULABLE

REPO_ROOT = Path(__file__).resolve().parents[2]


class RemoteEmulator:
    """The test controls of an emulator reached over HTTP (stdlib only)."""

    def __init__(self, url: str, process: subprocess.Popen[str] | None = None) -> None:
        self.url = url.rstrip("/")
        self.process = process

    def _request(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(f"{self.url}/_emulator/{path}", data=data, method=method)
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            raise RuntimeError(f"emulator {method} {path}: {exc.code} {exc.read()!r}") from None

    def drop_watches(self, *, abrupt: bool = False) -> int:
        return int(self._request("POST", "faults/drop-watches", {"abrupt": abrupt})["result"])

    def fail_requests(
        self,
        count: int,
        status: int,
        *,
        method: str = "*",
        path: str = ".*",
        retry_after_s: int = 1,
    ) -> None:
        self._request(
            "POST",
            "faults/fail-requests",
            {
                "count": count,
                "status": status,
                "method": method,
                "path": path,
                "retry_after_s": retry_after_s,
            },
        )

    def evict_pod(self, namespace: str, name: str) -> bool:
        return bool(
            self._request("POST", "faults/evict", {"namespace": namespace, "name": name})["result"]
        )

    def oom_kill(self, namespace: str, name: str, container: str | None = None) -> bool:
        return bool(
            self._request(
                "POST",
                "faults/oom-kill",
                {"namespace": namespace, "name": name, "container": container},
            )["result"]
        )

    def set_image_unpullable(self, image: str, unpullable: bool = True) -> None:
        self._request("POST", "faults/image-unpullable", {"image": image, "unpullable": unpullable})

    def set_unschedulable(self, selector: str, message: str = DEFAULT_UNSCHEDULABLE) -> None:
        self._request("POST", "faults/unschedulable", {"selector": selector, "message": message})

    def clear_unschedulable(self) -> None:
        self._request("DELETE", "faults/unschedulable")

    def clear_faults(self) -> None:
        self._request("DELETE", "faults")

    def stats(self) -> dict[str, Any]:
        result: dict[str, Any] = self._request("GET", "stats")
        return result

    def reset_stats(self) -> None:
        self._request("DELETE", "stats")

    def live_pids(self) -> list[int]:
        return [int(p) for p in self._request("GET", "processes")["pids"]]

    def stop(self, timeout_s: float = 30.0) -> None:
        """Terminate a spawned emulator (it kills its pods' processes) and wait for it."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
        try:
            self.process.wait(timeout=timeout_s)
        finally:
            if self.process.stdout is not None:
                self.process.stdout.close()


def spawn_emulator(
    workdir: str | Path,
    *extra_args: str,
    python: str = sys.executable,
    cwd: str | Path | None = None,
) -> RemoteEmulator:
    """Start ``python -m support.k8s_emulator`` and wait for its ``listening on URL`` line.

    It runs from the repository root (unless ``cwd`` says otherwise): the emulator is not
    installed, so that is where ``support`` is found."""
    proc = subprocess.Popen(
        [python, "-m", "support.k8s_emulator", "--port", "0", "--workdir", str(workdir),
         *extra_args],
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO_ROOT if cwd is None else cwd,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if not line.startswith("listening on "):
        proc.kill()
        proc.wait()
        proc.stdout.close()
        raise RuntimeError(f"emulator did not start (exit {proc.returncode}): {line!r}")
    return RemoteEmulator(line.removeprefix("listening on "), proc)
