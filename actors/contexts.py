"""The expression contexts a job sees (pure): github, inputs, matrix, needs, strategy...
and the job's preparation from them: its env, script, image and runner labels."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from workflow.expressions import interpolate
from workflow.model import JobSpec, Plan
from workflow.script import render_job_script

# GitHub's public instance: what `github.server_url` and friends are when the
# repository URL names no other server (as act and GitHub's own runner default).
GITHUB_SERVER = ("https://github.com", "https://api.github.com", "https://api.github.com/graphql")


@dataclass(frozen=True)
class BuildContext:
    """What a build's jobs know about the build (from its row and snapshot)."""

    build_id: int
    number: int
    attempt: int
    pipeline: str
    ref: str = ""
    sha: str = ""
    triggered_by: str = ""
    inputs: Mapping[str, Any] = field(default_factory=dict)
    repository_url: str = ""
    workflow: str = ""  # the workflow's `name:` (GitHub: the file's path without one)

    def github(self, job_id: str = "", workspace: str = "") -> dict[str, Any]:
        """The `github` context: every documented property that means something for a
        build triggered by hand (``workflow_dispatch``) on a self-hosted runner. Values
        are strings as on GitHub (``ref_protected`` is a boolean there too); the
        per-step ``action`` is filled in by the script renderer."""
        ref = self.ref or "refs/heads/main"
        server, api, graphql = server_urls(self.repository_url)
        return {
            "action": "",
            "actor": self.triggered_by,
            "api_url": api,
            "base_ref": "",
            "event": {"inputs": dict(self.inputs)},
            "event_name": "workflow_dispatch",
            "graphql_url": graphql,
            "head_ref": "",
            "job": job_id,
            "ref": ref,
            "ref_name": ref_name(ref),
            "ref_protected": False,
            "ref_type": "tag" if ref.startswith("refs/tags/") else "branch",
            "repository": self.pipeline,
            "repository_owner": repository_owner(self.pipeline, self.repository_url),
            "repository_url": self.repository_url,
            "repositoryUrl": self.repository_url,
            # Conveyor keeps logs until they are deleted: no retention period.
            "retention_days": "0",
            "run_attempt": str(self.attempt),
            "run_id": str(self.build_id),
            "run_number": str(self.number),
            "secret_source": "None",
            "server_url": server,
            "sha": self.sha,
            "triggering_actor": self.triggered_by,
            "workflow": self.workflow or self.pipeline,
            "workspace": workspace,
        }


def ref_name(ref: str) -> str:
    """GitHub's short ref: ``refs/heads/feature/x`` is ``feature/x``, a pull request's
    ``refs/pull/7/merge`` is ``7/merge``; anything else is itself."""
    parts = ref.split("/", 2)
    return parts[2] if len(parts) == 3 and parts[0] == "refs" and parts[2] else ref


def server_urls(repository_url: str) -> tuple[str, str, str]:
    """``(server_url, api_url, graphql_url)``: GitHub's, unless the repository is on
    another http(s) server (GitHub Enterprise Server's API paths then)."""
    parts = urlsplit(repository_url) if "://" in repository_url else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        return GITHUB_SERVER
    host = parts.hostname if parts.port is None else f"{parts.hostname}:{parts.port}"
    if host.lower() == "github.com":
        return GITHUB_SERVER
    server = f"{parts.scheme}://{host}"  # never the URL's credentials
    return server, f"{server}/api/v3", f"{server}/api/graphql"


def repository_owner(pipeline: str, repository_url: str) -> str:
    """The owner part of ``owner/name``: from the pipeline's name when it has one, else
    from the repository URL's path; empty when neither says."""
    if "/" in pipeline:
        return pipeline.split("/", 1)[0]
    if "://" in repository_url:
        path = urlsplit(repository_url).path
    else:  # scp-like git@host:owner/name.git, or a local path
        path = repository_url.split(":", 1)[-1]
    segments = [s for s in path.split("/") if s]
    return segments[-2] if len(segments) >= 2 else ""


def job_if_contexts(
    build: BuildContext, job: JobSpec, needs: Mapping[str, Mapping[str, Any]]
) -> dict[str, Any]:
    """Contexts for a job-level `if:` (GitHub allows github, needs, vars, inputs)."""
    return {
        "github": build.github(job.job_id),
        "needs": dict(needs),
        "inputs": dict(build.inputs),
        "vars": {},
        "matrix": dict(job.matrix),
    }


def job_run_contexts(
    build: BuildContext,
    plan: Plan,
    job: JobSpec,
    needs: Mapping[str, Mapping[str, Any]],
    env: Mapping[str, str],
    workspace: str,
) -> dict[str, Any]:
    """Contexts known when the job starts (steps.* is resolved inside the job script)."""
    return {
        "github": build.github(job.job_id, workspace),
        "inputs": dict(build.inputs),
        "matrix": dict(job.matrix),
        "needs": dict(needs),
        "strategy": {
            "fail-fast": job.fail_fast,
            "job-index": job.matrix_index,
            "job-total": job.matrix_total,
            "max-parallel": job.max_parallel or job.matrix_total,
        },
        "job": {"status": "success", "container": {}, "services": {}},
        "runner": {
            "os": "Linux",
            "arch": "X64",
            "name": "conveyor",
            "environment": "self-hosted",
            "temp": "",
            "tool_cache": "",
        },
        "env": dict(env),
        "vars": {},
        "secrets": {},
    }


@dataclass(frozen=True)
class Prepared:
    """What a job needs before it starts (the launch, apart from the backend's part)."""

    script: str
    env: dict[str, str]
    image: str | None
    runs_on: str | tuple[str, ...] | None
    container_env: dict[str, str]


def prepare_job(
    build: BuildContext,
    plan: Plan,
    job: JobSpec,
    needs: Mapping[str, Mapping[str, Any]],
    workspace: str,
    nonce: str,
) -> Prepared:
    """The job's env (workflow env, then job env, each value seeing those before it),
    its runner script, image and labels. Raises ExpressionError or ValueError
    (ScriptError) when the job cannot start: what ``validate`` accepts never does."""
    env: dict[str, str] = {}
    for source in (plan.env, job.env):
        for name, template in source.items():
            contexts = job_run_contexts(build, plan, job, needs, env, workspace)
            env[name] = interpolate(str(template), contexts)
    contexts = job_run_contexts(build, plan, job, needs, env, workspace)
    return Prepared(
        script=render_job_script(job, plan, contexts, nonce),
        env=env,
        image=interpolate(job.image, contexts) if job.image else None,
        runs_on=_runs_on(job.runs_on, contexts),
        container_env={k: interpolate(str(v), contexts) for k, v in job.container_env.items()},
    )


def _runs_on(value: Any, contexts: Mapping[str, Any]) -> str | tuple[str, ...] | None:
    """`runs-on` with its templates evaluated: one label or several."""
    if value is None:
        return None
    if isinstance(value, str):
        return interpolate(value, contexts)
    if isinstance(value, list | tuple):
        return tuple(interpolate(str(v), contexts) for v in value)
    return str(value)
