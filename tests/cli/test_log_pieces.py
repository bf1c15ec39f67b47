"""`conveyor logs` and `conveyor status` with bounded logs: pieces joined, a flagged job."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli.build_cmd import logs_main, status_main
from cli.view import CONTINUED_MARK
from support.harness import Engine, engine, issue_admin_token

WIDE = """
jobs:
  wide:
    steps:
      - run: head -c 150000 /dev/zero | tr '\\0' w; echo; echo next
"""


def _cli(eng: Engine, main: object, *args: str) -> None:
    token = issue_admin_token()
    assert callable(main)
    assert main([*args, "--addr", eng.runtime.address, "--token", token]) == 0


def test_logs_of_one_job_join_the_pieces_of_a_long_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with engine(tmp_path) as eng:
        build = eng.run(WIDE, timeout=60).build
        capsys.readouterr()
        _cli(eng, logs_main, str(build.id), "--job", "wide")
        assert capsys.readouterr().out == "w" * 150_000 + "\nnext\n"
        _cli(eng, logs_main, str(build.id))
        shown = capsys.readouterr().out.splitlines()
        assert [line.endswith(CONTINUED_MARK) for line in shown] == [True, True, False, False]
        _cli(eng, logs_main, str(build.id), "--json")
        rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
        assert [row["continued"] for row in rows] == [True, True, False, False]


def test_status_shows_why_a_succeeded_job_is_flagged(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with engine(tmp_path, max_job_log_bytes=1000) as eng:
        build = eng.run("jobs: {loud: {steps: [{run: 'seq 1 1000'}]}}", timeout=60).build
        capsys.readouterr()
        _cli(eng, status_main, str(build.id))
        [row] = [line for line in capsys.readouterr().out.splitlines() if "loud" in line]
        assert "SUCCEEDED" in row and "(log truncated at 1,000 bytes)" in row
