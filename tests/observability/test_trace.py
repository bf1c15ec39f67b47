"""The tracing hook the benches read: off by default, and the engine marks what
bench.engine measures (a local job's launch, spawn and exit)."""

from __future__ import annotations

from pathlib import Path

import pytest

from observability import trace
from support.harness import engine


def test_marks_are_dropped_without_a_hook_and_recorded_with_one() -> None:
    assert not trace.tracing()
    trace.mark("nobody", "listens")
    with trace.recording() as marks:
        assert trace.tracing()
        trace.mark("job", "spawn")
        with pytest.raises(RuntimeError, match="installed already"), trace.recording():
            pass
    trace.mark("job", "after")
    assert [(subject, event) for subject, event, _ in marks] == [("job", "spawn")]
    assert not trace.tracing()


def test_a_local_chain_marks_each_launch_spawn_and_exit_in_order(tmp_path: Path) -> None:
    with engine(tmp_path) as eng, trace.recording() as marks:
        result = eng.run("jobs:\n  a: {steps: [{run: 'true'}]}\n"
                         "  b: {needs: a, steps: [{run: 'true'}]}\n")
    assert result.status == "SUCCEEDED", result.build.reason
    at = {(subject, event): t for subject, event, t in marks}
    launches = {key: at[(trace.launch_subject(result.build.id, key), "launch")]
                for key in ("a", "b")}
    handles = {subject for subject, event, _ in marks if event == "spawn"}
    assert len(handles) == 2 and all((h, "exit") in at for h in handles)
    first, second = sorted(handles, key=lambda h: at[(h, "spawn")])
    assert launches["a"] <= at[(first, "spawn")] < at[(first, "exit")]
    # b is told a's result from a's output, possibly before a's exit is seen: no order
    # between a's exit and b's launch.
    assert launches["b"] <= at[(second, "spawn")] < at[(second, "exit")]
