"""The live view of `conveyor run` as a terminal shows it (pyte emulates the terminal).

A 30-leg matrix with names wider than 80 columns: rows must never wrap, the view must
fit the terminal (the scrollback holds log lines, never copies of the view), resizing
must work, and the final screen shows the summary.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.cli.terminal import Terminal

LEGS = [f"leg-{n:02d}" for n in range(1, 31)]
VIEW_ROW = re.compile(r"^  [·◌●✓✗⊘↷!] ")
SUMMARY = "build #1 of matrix30: "
# A whole view with every leg running: the summary line, down to the view's last row
# (the count of the jobs not shown, or the report job waiting for the legs).
WHOLE_VIEW = re.compile("30 running.*?( more: |← test)".encode(), re.S)


def matrix_workflow(tmp_path: Path) -> Path:
    """30 legs that run until the test creates ``go`` (leg-07 then fails)."""
    go = tmp_path / "go"
    path = tmp_path / "matrix30.yaml"
    path.write_text(
        "jobs:\n"
        "  test:\n"
        "    name: test ${{ matrix.leg }} with a long descriptive label that overflows "
        "narrow terminals\n"
        "    strategy:\n"
        "      fail-fast: false\n"
        f"      matrix: {{leg: [{', '.join(LEGS)}]}}\n"
        "    steps:\n"
        "      - run: |\n"
        '          echo "${{ matrix.leg }} started"\n'
        f"          while [ ! -e {go} ]; do sleep 0.05; done\n"
        '          test "${{ matrix.leg }}" != leg-07\n'
        "  report:\n"
        "    needs: test\n"
        "    if: always()\n"
        "    steps: [{run: echo reported}]\n"
    )
    return path


def check_screen(term: Terminal, columns: int) -> None:
    screen = term.screen
    assert screen.wraps == 0, f"rows wider than {columns} columns: {screen.wrapped_text[:3]}"
    everything = screen.all_lines()
    headers = [line for line in everything if line.startswith(SUMMARY)]
    assert len(headers) == 1, f"{len(headers)} copies of the summary line: {headers[:5]}"
    stale = [line for line in screen.history_lines() if VIEW_ROW.match(line)]
    assert not stale, f"rows of the view left in the scrollback: {stale[:5]}"
    for line in screen.display:
        if VIEW_ROW.match(line):  # the status column stays on screen, however long names are
            assert re.search(r"  (PENDING|QUEUED|RUNNING|SUCCEEDED|FAILED|SKIPPED) ", line), line


def finish(term: Terminal, workflow: Path, columns: int) -> None:
    (workflow.parent / "go").touch()
    assert term.read_to_end() == 1  # leg-07 failed
    check_screen(term, columns)
    display = [line.rstrip() for line in term.screen.display]
    summary = next(line for line in display if line.startswith(SUMMARY))
    assert "FAILED" in summary and "30 succeeded" in summary and "1 failed" in summary, summary
    failed = [line for line in display if line.startswith("  ✗ test leg-07")]
    assert len(failed) == 1, display
    # Log lines name their leg in full from the first one on.
    logged = term.plain_output()
    for leg in LEGS:
        assert f"test ({leg}) | {leg} started\r\n" in logged, leg


@pytest.mark.slow
@pytest.mark.parametrize(("columns", "lines"), [(80, 24), (200, 50)])
def test_thirty_legs_fit_the_terminal(tmp_path: Path, columns: int, lines: int) -> None:
    workflow = matrix_workflow(tmp_path)
    with Terminal(["run", str(workflow)], columns, lines) as term:
        term.read_until(b" started", count=30)
        term.read_until_match(WHOLE_VIEW, start=len(term.raw))  # a view drawn after them
        check_screen(term, columns)
        rows = [line for line in term.screen.display if VIEW_ROW.match(line)]
        if lines == 24:  # no room for 31 jobs: the running ones, and a count of the rest
            assert 0 < len(rows) < 24 - 2
            assert any(line.startswith("  … ") and "more" in line
                       for line in term.screen.display)
        else:
            assert len(rows) == 31  # everything fits
        finish(term, workflow, columns)


@pytest.mark.slow
def test_resizing_narrower_and_shorter(tmp_path: Path) -> None:
    workflow = matrix_workflow(tmp_path)
    with Terminal(["run", str(workflow)], 200, 50) as term:
        term.read_until(b" started", count=30)
        term.read_until_match(WHOLE_VIEW, start=len(term.raw))
        mark = term.resize_pty(80, 24)
        # Only the 24-row view counts the jobs it cannot show: the first redraw for the
        # new size is the first with " more: ".
        term.read_until(b" more: ", start=mark)
        summary_of_it = term.raw.rindex(SUMMARY.encode(), mark, term.raw.index(b" more: ", mark))
        term.resize_screen_at_frame(80, 24, summary_of_it, mark)
        term.read_until_match(WHOLE_VIEW, start=summary_of_it)
        check_screen(term, 80)
        finish(term, workflow, 80)
