"""`conveyor validate FILE [--json]`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli.validate import main

VALID = (
    "name: CI\njobs:\n  a:\n    runs-on: x\n    strategy: {matrix: {v: [1, 2]}}\n"
    "    steps: [{run: a}]\n  b:\n    needs: a\n    runs-on: x\n    steps: [{run: b}]\n"
)
INVALID = "jobs:\n  a:\n    needs: [c]\n    runs-on: x\n    steps: [{run: a}]\n"


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "ci.yaml"
    path.write_text(text)
    return str(path)


def test_valid_human(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([write(tmp_path, VALID)]) == 0
    out = capsys.readouterr().out
    assert "valid (CI), 3 jobs" in out
    assert "b  after a (1), a (2)" in out


def test_valid_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([write(tmp_path, VALID), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result == {
        "valid": True,
        "jobs": [
            {"key": "a (1)", "name": "a (1)", "needs": [], "matrix": {"v": 1}},
            {"key": "a (2)", "name": "a (2)", "needs": [], "matrix": {"v": 2}},
            {"key": "b", "name": "b", "needs": ["a (1)", "a (2)"], "matrix": {}},
        ],
    }


def test_invalid_human(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, INVALID.replace("[c]", "[c, d]"))
    assert main([path]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.splitlines() == [
        f"{path}:3:13: jobs.a.needs[0]: unknown job 'c'",
        f"{path}:3:16: jobs.a.needs[1]: unknown job 'd'",
        f"conveyor validate: 2 errors in {path}",
    ]


def test_invalid_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, INVALID)
    assert main([path, "--json"]) == 2
    # The shape every command's --json errors have, beside validate's own "valid".
    assert json.loads(capsys.readouterr().out) == {
        "valid": False,
        "error": {
            "code": "INVALID_ARGUMENT",
            "message": f"1 error in {path}",
            "details": [{"file": path, "path": "jobs.a.needs[0]", "line": 3, "column": 13,
                         "message": "unknown job 'c'"}],
        },
    }


def test_unreadable_and_oversized(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "missing.yaml"
    assert main([str(missing)]) == 2
    assert capsys.readouterr().err == (
        f"conveyor validate: cannot read {missing}: No such file or directory\n")
    big = tmp_path / "big.yaml"
    big.write_bytes(b"#" * (3 * 1024 * 1024))
    assert main([str(big)]) == 2
    assert capsys.readouterr().err == (
        f"conveyor validate: {big}: the file is larger than 1,048,576 bytes (1 MiB), the "
        "limit\n")
