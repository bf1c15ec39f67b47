"""Values substituted into a template are data: never evaluated a second time.

GitHub evaluates a workflow's `${{ }}` once; what an input (or a matrix value, or a
need's output) holds is text, even when that text looks like an expression. The safe
pattern of GitHub's hardening guide — the value in `env:`, the script reading "$X" —
must hold here too, end to end through a real job.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from support.harness import engine

WORKFLOW = """
    on:
      workflow_dispatch:
        inputs:
          x: {default: plain}
    jobs:
      a:
        strategy:
          matrix:
            m: ["${{ inputs.x }}"]
        env:
          JOB_X: ${{ inputs.x }}
        outputs:
          out: ${{ steps.o.outputs.v }}
        steps:
          - run: printf 'job=%s\\n' "$JOB_X"
          - env:
              STEP_X: ${{ inputs.x }}
              M: ${{ matrix.m }}
            run: printf 'step=%s\\nmatrix=%s\\n' "$STEP_X" "$M"
          - id: o
            env:
              STEP_X: ${{ inputs.x }}
            run: printf 'v=%s\\n' "$STEP_X" >> "$GITHUB_OUTPUT"
      b:
        needs: a
        env:
          NEED: ${{ needs.a.outputs.out }}
        steps:
          - run: printf 'need=%s\\n' "$NEED"
    """


@pytest.mark.parametrize("value", [
    "${{ 'a",                       # once: "Unterminated expression" failed the job
    "${{ github.sha }}",            # once: became the sha
    "${{ format('{0}', 'x') }}!",
    "$(touch /tmp/pwned) `id` \"'",  # shell text stays text in the env pattern
])
def test_an_input_that_looks_like_an_expression_reaches_the_script_as_written(
        tmp_path: Path, value: str) -> None:
    with engine(tmp_path) as eng:
        result = eng.run(WORKFLOW, inputs={"x": value})
        assert result.status == "SUCCEEDED", result.build.reason
        leg = next(job.key for job in result.build.jobs if job.key.startswith("a"))
        assert eng.log_text(result.build.id, leg) == [
            f"job={value}", f"step={value}", f"matrix={value}"]
        assert eng.log_text(result.build.id, "b") == [f"need={value}"]
