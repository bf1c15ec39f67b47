"""`${{ github.workspace }}` and the GITHUB_* variables, through a real local job."""

from __future__ import annotations

from pathlib import Path

from support.harness import Engine, engine

# What a job reads: the same expression, variable and directory, three ways.
WORKSPACE_WORKFLOW = """
    jobs:
      ws:
        env:
          JOB_WS: ${{ github.workspace }}
        steps:
          - run: |
              echo "expr=${{ github.workspace }}"
              echo "var=$GITHUB_WORKSPACE"
              echo "pwd=$(pwd -P)"
              echo "env=$JOB_WS"
          - run: env | sed -n 's/^\\(GITHUB_[A-Z_]*\\)=.*/\\1/p' | sort
    """

# The variables GitHub sets in a step of a manually triggered Linux job.
GITHUB_VARIABLES = sorted([
    "GITHUB_ACTION", "GITHUB_ACTIONS", "GITHUB_ACTOR", "GITHUB_API_URL", "GITHUB_BASE_REF",
    "GITHUB_ENV", "GITHUB_EVENT_NAME", "GITHUB_GRAPHQL_URL", "GITHUB_HEAD_REF",
    "GITHUB_JOB", "GITHUB_OUTPUT", "GITHUB_PATH", "GITHUB_REF", "GITHUB_REF_NAME",
    "GITHUB_REF_PROTECTED", "GITHUB_REF_TYPE", "GITHUB_REPOSITORY",
    "GITHUB_REPOSITORY_OWNER", "GITHUB_RETENTION_DAYS", "GITHUB_RUN_ATTEMPT",
    "GITHUB_RUN_ID", "GITHUB_RUN_NUMBER", "GITHUB_SERVER_URL", "GITHUB_SHA",
    "GITHUB_STEP_SUMMARY", "GITHUB_TRIGGERING_ACTOR", "GITHUB_WORKFLOW", "GITHUB_WORKSPACE",
])


def seen(eng: Engine) -> tuple[dict[str, str], list[str]]:
    """The four workspace values the job printed, and the GITHUB_* names it had."""
    result = eng.run(WORKSPACE_WORKFLOW)
    assert result.status == "SUCCEEDED", result.build.reason
    lines = eng.log_text(result.build.id, "ws")
    values = dict(line.split("=", 1) for line in lines[:4])
    return values, lines[4:]


def test_github_workspace_is_the_absolute_workspace_of_the_job(tmp_path: Path) -> None:
    with engine(tmp_path) as eng:
        values, names = seen(eng)
    workspace = values["expr"]
    assert workspace.startswith(str(tmp_path.resolve() / "work")), workspace
    assert values == {"expr": workspace, "var": workspace, "pwd": workspace, "env": workspace}
    assert names == GITHUB_VARIABLES
