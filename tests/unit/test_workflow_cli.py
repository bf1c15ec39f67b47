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
    path = write(tmp_path, INVALID)
    assert main([path]) == 2
    err = capsys.readouterr().err
    assert f"{path}:3:13: jobs.a.needs[0]: unknown job 'c'" in err


def test_invalid_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([write(tmp_path, INVALID), "--json"]) == 2
    assert json.loads(capsys.readouterr().out) == {
        "valid": False,
        "errors": [
            {"path": "jobs.a.needs[0]", "line": 3, "column": 13, "message": "unknown job 'c'"}
        ],
    }


def test_unreadable_and_oversized(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(tmp_path / "missing.yaml")]) == 2
    assert "cannot read" in capsys.readouterr().err
    big = tmp_path / "big.yaml"
    big.write_bytes(b"#" * (3 * 1024 * 1024))
    assert main([str(big)]) == 2
    assert "larger than 1,048,576 bytes" in capsys.readouterr().err
