"""An independent client: `buf curl` over server reflection with a bearer token; `buf lint`.

buf comes from npm (`@bufbuild/buf`), installed once under ~/.cache/conveyor/buf. When
npm cannot install it the tests skip loudly — except under CI=true, where they fail.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

import store
from tests.api.conftest import Api, pipeline

ROOT = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("CONVEYOR_BUF_CACHE", Path.home() / ".cache" / "conveyor" / "buf"))
VERSION = "1.75.0"


def _unavailable(reason: str) -> None:
    message = f"buf is not available: {reason}"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def buf() -> str:
    binary = CACHE / "node_modules" / ".bin" / "buf"
    if not binary.exists():
        npm = shutil.which("npm")
        if npm is None:
            _unavailable("npm is not installed")
        assert npm is not None
        CACHE.mkdir(parents=True, exist_ok=True)
        done = subprocess.run([npm, "install", "--prefix", str(CACHE), "--no-audit",
                               "--no-fund", f"@bufbuild/buf@{VERSION}"],
                              capture_output=True, text=True, timeout=600)
        if done.returncode != 0 or not binary.exists():
            _unavailable(f"npm install @bufbuild/buf failed: {done.stderr[-2000:]}")
    check = subprocess.run([str(binary), "--version"], capture_output=True, text=True,
                           timeout=60)
    if check.returncode != 0:
        _unavailable(f"buf --version failed: {check.stderr[-2000:]}")
    return str(binary)


def _curl(buf: str, api: Api, method: str, body: dict[str, object],
          token: str | None) -> subprocess.CompletedProcess[str]:
    args = [buf, "curl", "--protocol", "grpc", "--http2-prior-knowledge", "-d", json.dumps(body)]
    if token:
        args += ["-H", f"authorization: Bearer {token}"]
    args.append(f"http://{api.address}/conveyor.v1.PipelineService/{method}")
    return subprocess.run(args, capture_output=True, text=True, timeout=60)


def test_buf_curl_triggers_a_build_and_reads_it_back(buf: str, api: Api) -> None:
    pipeline("web", "alice", {"dev": "developer"})
    started = _curl(buf, api, "StartPipelineBuild",
                    {"pipeline": "web", "ref": "refs/heads/main", "inputs": {"target": "prod"}},
                    api.tokens["dev"])
    assert started.returncode == 0, started.stderr
    build = json.loads(started.stdout)["build"]
    assert build["pipelineName"] == "web" and build["triggeredBy"] == "dev"
    assert build["status"] == "BUILD_STATUS_QUEUED"
    read = _curl(buf, api, "GetBuild", {"buildId": build["id"]}, api.tokens["dev"])
    assert read.returncode == 0, read.stderr
    again = json.loads(read.stdout)["build"]
    assert (again["id"], again["inputs"]) == (build["id"], {"target": "prod"})
    assert store.get_build(int(build["id"])).triggered_by == "dev"

    refused = _curl(buf, api, "GetBuild", {"buildId": build["id"]}, None)
    assert refused.returncode != 0 and "unauthenticated" in refused.stderr.lower()


def test_buf_lint_passes_on_the_protos(buf: str) -> None:
    done = subprocess.run([buf, "lint", "proto"], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
