"""The expression contexts a job sees (pure): github, inputs, matrix, needs, strategy...
and the job's preparation from them: its env, script, image and runner labels."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from workflow.expressions import interpolate
from workflow.model import JobSpec, Plan
from workflow.script import render_job_script


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

    def github(self, job_id: str = "", workspace: str = "") -> dict[str, Any]:
        ref = self.ref or "refs/heads/main"
        return {
            "sha": self.sha,
            "ref": ref,
            "ref_name": ref.rsplit("/", 1)[-1] if ref.startswith("refs/") else ref,
            "repository": self.pipeline,
            "repository_url": self.repository_url,
            "run_id": str(self.build_id),
            "run_number": str(self.number),
            "run_attempt": str(self.attempt),
            "job": job_id,
            "workspace": workspace,
            "event_name": "workflow_dispatch",
            "actor": self.triggered_by,
            "triggering_actor": self.triggered_by,
            "event": {"inputs": dict(self.inputs)},
            "server_url": "",
        }


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
        "runner": {"os": "Linux", "arch": "X64", "name": "conveyor", "temp": "", "tool_cache": ""},
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
