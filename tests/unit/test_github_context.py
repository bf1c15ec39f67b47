"""The `github` context and the GITHUB_* variables a job sees, as GitHub documents them."""

from __future__ import annotations

import re
from typing import Any

import pytest

from actors.contexts import BuildContext, prepare_job, ref_name, repository_owner, server_urls
from workflow import load
from workflow.markers import new_nonce

# Every property of GitHub's `github` context that means something for a build started
# by hand on a self-hosted runner (docs.github.com, "Contexts reference": github).
DOCUMENTED = {
    "action", "actor", "api_url", "base_ref", "event", "event_name", "graphql_url",
    "head_ref", "job", "ref", "ref_name", "ref_protected", "ref_type", "repository",
    "repository_owner", "repositoryUrl", "retention_days", "run_attempt", "run_id",
    "run_number", "secret_source", "server_url", "sha", "triggering_actor", "workflow",
    "workspace",
}

BUILD = BuildContext(
    build_id=41, number=7, attempt=2, pipeline="web", ref="refs/heads/feature/login",
    sha="0123abc", triggered_by="alice", inputs={"who": "bob"},
    repository_url="https://git.example.com:8443/acme/web.git", workflow="CI",
)


def test_every_documented_property_is_there() -> None:
    github = BUILD.github("test", "/work/ws")
    assert set(github) >= DOCUMENTED
    assert github | {"event": None} == github | {
        "action": "",
        "actor": "alice",
        "api_url": "https://git.example.com:8443/api/v3",
        "base_ref": "",
        "event": None,
        "event_name": "workflow_dispatch",
        "graphql_url": "https://git.example.com:8443/api/graphql",
        "head_ref": "",
        "job": "test",
        "ref": "refs/heads/feature/login",
        "ref_name": "feature/login",
        "ref_protected": False,
        "ref_type": "branch",
        "repository": "web",
        "repository_owner": "acme",
        "repositoryUrl": "https://git.example.com:8443/acme/web.git",
        "retention_days": "0",
        "run_attempt": "2",
        "run_id": "41",
        "run_number": "7",
        "server_url": "https://git.example.com:8443",
        "sha": "0123abc",
        "triggering_actor": "alice",
        "workflow": "CI",
        "workspace": "/work/ws",
    }
    assert github["event"] == {"inputs": {"who": "bob"}}


@pytest.mark.parametrize(
    ("ref", "name"),
    [
        ("refs/heads/main", "main"),
        ("refs/heads/feature/x", "feature/x"),  # not just the last segment
        ("refs/tags/v1.2", "v1.2"),
        ("refs/pull/12/merge", "12/merge"),
        ("main", "main"),
    ],
)
def test_ref_name_is_githubs_short_ref(ref: str, name: str) -> None:
    assert ref_name(ref) == name


def test_ref_type_tells_tags_from_branches() -> None:
    assert BuildContext(1, 1, 1, "p", ref="refs/tags/v1").github()["ref_type"] == "tag"
    assert BuildContext(1, 1, 1, "p").github()["ref_type"] == "branch"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("", ("https://github.com", "https://api.github.com", "https://api.github.com/graphql")),
        ("https://github.com/a/b", ("https://github.com", "https://api.github.com",
                                    "https://api.github.com/graphql")),
        ("git@github.com:a/b.git", ("https://github.com", "https://api.github.com",
                                    "https://api.github.com/graphql")),
        # Credentials in the URL never reach the context.
        ("https://user:secret@ghe.corp/a/b", ("https://ghe.corp", "https://ghe.corp/api/v3",
                                               "https://ghe.corp/api/graphql")),
    ],
)
def test_server_urls(url: str, expected: tuple[str, str, str]) -> None:
    assert server_urls(url) == expected


@pytest.mark.parametrize(
    ("pipeline", "url", "owner"),
    [
        ("acme/web", "", "acme"),
        ("web", "https://github.com/acme/web.git", "acme"),
        ("web", "git@github.com:acme/web.git", "acme"),
        ("web", "", ""),
    ],
)
def test_repository_owner(pipeline: str, url: str, owner: str) -> None:
    assert repository_owner(pipeline, url) == owner


WORKFLOW = """\
name: CI
env:
  TOP: ${{ github.workspace }}
jobs:
  test:
    runs-on: x
    env:
      WS: ${{ github.workspace }}
    steps:
      - run: echo ${{ github.workspace }} ${{ github.action }}
      - id: named
        run: echo ${{ github.action }}
      - run: echo ${{ github.action }}
      - uses: actions/checkout@v4
"""


def script_of(text: str = WORKFLOW, workspace: str = "/work/ws") -> tuple[str, dict[str, Any]]:
    plan = load(text)
    prepared = prepare_job(BUILD, plan, plan.jobs[0], {}, workspace, new_nonce())
    return prepared.script, prepared.env


def exported(script: str) -> dict[str, str]:
    found = re.findall(r"^\s*(GITHUB_[A-Z_]+|RUNNER_[A-Z_]+)='([^']*)'; export \1$", script, re.M)
    return dict(found)


def test_github_workspace_is_the_workspace_everywhere() -> None:
    script, env = script_of()
    assert env == {"TOP": "/work/ws", "WS": "/work/ws"}
    assert "echo /work/ws __run" in script
    # $GITHUB_WORKSPACE is the script's own directory, which the backend makes this path.
    assert 'export GITHUB_WORKSPACE="$_cv_ws"' in script


def test_each_step_has_its_github_action() -> None:
    script, _ = script_of()
    assert "echo named" in script
    assert "echo __run_2" in script
    assert re.findall(r"GITHUB_ACTION='([^']*)'", script) == [
        "__run", "named", "__run_2", "__actions_checkout"
    ]


def test_the_github_variables_github_sets_are_exported() -> None:
    variables = exported(script_of()[0])
    assert variables | {"GITHUB_ACTION": ""} == variables | {
        "GITHUB_ACTION": "",
        "GITHUB_ACTOR": "alice",
        "GITHUB_API_URL": "https://git.example.com:8443/api/v3",
        "GITHUB_BASE_REF": "",
        "GITHUB_EVENT_NAME": "workflow_dispatch",
        "GITHUB_GRAPHQL_URL": "https://git.example.com:8443/api/graphql",
        "GITHUB_HEAD_REF": "",
        "GITHUB_JOB": "test",
        "GITHUB_REF": "refs/heads/feature/login",
        "GITHUB_REF_NAME": "feature/login",
        "GITHUB_REF_PROTECTED": "false",
        "GITHUB_REF_TYPE": "branch",
        "GITHUB_REPOSITORY": "web",
        "GITHUB_REPOSITORY_OWNER": "acme",
        "GITHUB_RETENTION_DAYS": "0",
        "GITHUB_RUN_ATTEMPT": "2",
        "GITHUB_RUN_ID": "41",
        "GITHUB_RUN_NUMBER": "7",
        "GITHUB_SERVER_URL": "https://git.example.com:8443",
        "GITHUB_SHA": "0123abc",
        "GITHUB_TRIGGERING_ACTOR": "alice",
        "GITHUB_WORKFLOW": "CI",
        "RUNNER_ARCH": "X64",
        "RUNNER_ENVIRONMENT": "self-hosted",
        "RUNNER_NAME": "conveyor",
        "RUNNER_OS": "Linux",
    }
    # Not GitHub's: Conveyor's own context keys do not leak as variables.
    assert "GITHUB_REPOSITORY_URL" not in variables and "GITHUB_REPOSITORYURL" not in variables
