"""The operator console's table: states fit their column, details go above it."""

from __future__ import annotations

from cli.console import STATE_WIDTH, render, split_state
from conveyor.v1 import admin_pb2

ISOLATION = "bubblewrap sandbox (uid 65532 via setpriv), pid namespace"


def actors(*states: tuple[str, str]) -> admin_pb2.ListActorsResponse:
    return admin_pb2.ListActorsResponse(actors=[
        admin_pb2.ActorInfo(kind="LocalActor", key=key, state=state, age_seconds=3.0)
        for key, state in states])


def test_a_detail_in_parentheses_goes_above_the_table_whole() -> None:
    lines = render(admin_pb2.GetRuntimeInfoResponse(role="all", backend="local"),
                   actors(("backend/local", f"running (isolation: {ISOLATION})"),
                          ("logs", "running")))
    header = lines[: lines.index("")]
    assert f"backend/local: isolation: {ISOLATION}" in header
    row = next(line for line in lines if line.startswith("LocalActor   backend/local"))
    assert row.split()[2] == "running" and "isolation" not in row
    table = lines[lines.index("") + 1:]
    # Every row's STATE column starts and ends where the header's does.
    age = table[0].index("    AGE")
    assert all(line[age - 1] == " " for line in table[1:-1]), table


def test_a_state_too_long_for_its_column_is_cut_visibly_and_shown_whole_above() -> None:
    long = "retrying: could not connect to the database server at db.internal:5432"
    assert split_state(long) == (long[: STATE_WIDTH - 1] + "…", long)
    assert split_state("running") == ("running", "")
    assert split_state("FAILED: flushing logs") == ("FAILED: flushing logs", "")
    lines = render(admin_pb2.GetRuntimeInfoResponse(), actors(("logs", long)))
    assert f"logs: {long}" in lines[: lines.index("")]
