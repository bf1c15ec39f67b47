"""Hostile workflow files get a clear error quickly and with little memory.

Times are printed (run with -s to see them); the < 2 s bounds only guard against hangs.
"""

from __future__ import annotations

import time
import tracemalloc

from workflow import WorkflowError, validate

HANG_GUARD_SECONDS = 2.0


def measure(name: str, text: str | bytes) -> tuple[list[WorkflowError], float, int]:
    start = time.perf_counter()
    errors = validate(text)
    elapsed = time.perf_counter() - start
    # Memory is measured in a second run: tracing slows Python down several times.
    tracemalloc.start()
    try:
        validate(text)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    print(f"{name}: {elapsed * 1000:.1f} ms, peak {peak / 1e6:.1f} MB, {len(errors)} error(s)")
    return errors, elapsed, peak


def billion_laughs() -> str:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, 10):
        prev, cur = chr(96 + i), chr(97 + i)
        lines.append(f"{cur}: &{cur} [{', '.join(['*' + prev] * 9)}]")
    lines.append("jobs: *j")
    return "\n".join(lines) + "\n"


def test_billion_laughs() -> None:
    errors, elapsed, peak = measure("billion laughs", billion_laughs())
    assert [e.message for e in errors] == [
        "the document expands to more than 100,000 values (aliases included); refusing to load it"
    ]
    assert errors[0].line > 1
    assert elapsed < HANG_GUARD_SECONDS
    assert peak < 5_000_000


def test_ten_megabyte_file() -> None:
    text = "jobs:\n" + "#" * (10 * 1024 * 1024) + "\n"
    errors, elapsed, _peak = measure("10 MB file", text.encode())
    assert len(errors) == 1
    assert "the limit is 1,048,576 bytes (1 MiB)" in errors[0].message
    assert elapsed < HANG_GUARD_SECONDS


def test_ten_thousand_jobs() -> None:
    body = "".join(f"  j{i}: {{runs-on: x, steps: [{{run: a}}]}}\n" for i in range(10_000))
    errors, elapsed, _peak = measure("10,000 jobs", "jobs:\n" + body)
    assert [(e.path, e.message) for e in errors] == [
        ("jobs", "the workflow defines more than 500 jobs; the limit is 500")
    ]
    assert errors[0].line == 2  # the jobs mapping starts there
    assert elapsed < HANG_GUARD_SECONDS


def test_huge_matrix_product() -> None:
    variables = "".join(f"        k{i}: [0,1,2,3,4,5,6,7,8,9]\n" for i in range(30))
    text = (
        "jobs:\n  t:\n    runs-on: x\n    steps: [{run: a}]\n    strategy:\n      matrix:\n"
        + variables
    )
    errors, elapsed, _peak = measure("10**30 matrix", text)
    assert len(errors) == 1
    assert errors[0].path == "jobs.t.strategy.matrix"
    assert "1,000,000,000,000,000,000,000,000,000,000 combinations" in errors[0].message
    assert "the limit is 256" in errors[0].message
    assert elapsed < HANG_GUARD_SECONDS


def test_matrices_that_expand_past_the_job_limit() -> None:
    job = (
        "  m{n}:\n    runs-on: x\n    steps: [{{run: a}}]\n    strategy:\n"
        "      matrix: {{a: [{values}]}}\n"
    )
    values = ", ".join(str(i) for i in range(200))
    text = "jobs:\n" + "".join(job.format(n=n, values=values) for n in range(3))
    errors, elapsed, _peak = measure("3 x 200 combinations", text)
    assert [(e.path, e.message) for e in errors] == [
        ("jobs", "the workflow expands to more than 500 jobs (matrices included); the limit is 500")
    ]
    assert elapsed < HANG_GUARD_SECONDS


def test_deep_nesting() -> None:
    for name, text in [
        ("deep flow", "jobs: " + "[" * 100_000),
        ("deep block", "jobs:\n" + "".join(" " * i + f"k{i}:\n" for i in range(1, 200))),
    ]:
        errors, elapsed, _peak = measure(name, text)
        message = errors[0].message
        assert len(errors) == 1 and ("nesting" in message or "depth" in message)
        assert elapsed < HANG_GUARD_SECONDS


def test_too_many_steps_and_long_names() -> None:
    steps = "".join("      - run: a\n" for _ in range(101))
    errors, _e, _p = measure("101 steps", "jobs:\n  a:\n    runs-on: x\n    steps:\n" + steps)
    assert [e.message for e in errors] == ["the job has 101 steps; the limit is 100"]
    long_name = "n" * 300
    errors, _e, _p = measure(
        "long name",
        f"jobs:\n  a:\n    name: {long_name}\n    runs-on: x\n    steps: [{{run: a}}]\n",
    )
    assert [e.message for e in errors] == ["is 300 characters long; the limit is 256"]


def test_error_flood_is_capped() -> None:
    body = "".join(f"  j{i}: {{runs-on: x, stepz: 1}}\n" for i in range(400))
    errors, _e, _p = measure("400 broken jobs", "jobs:\n" + body)
    assert len(errors) == 201
    assert errors[-1].message.endswith("more errors not shown")
