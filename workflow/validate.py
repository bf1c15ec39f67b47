"""From located YAML nodes to a checked, not yet expanded workflow definition.

Every problem is collected (never the first only) with its path and position; the
result is usable even when errors were found, so later stages can report theirs too.
The shared pieces are in ``validate_reader``; each part of a workflow has its reader.
"""

from __future__ import annotations

from workflow.diagnostics import Errors
from workflow.schema import (
    CTX_RUN_NAME,
    CTX_WORKFLOW_CONCURRENCY,
    CTX_WORKFLOW_ENV,
    MAX_JOBS,
    MAX_NAME_LENGTH,
    WORKFLOW_IGNORED,
    WORKFLOW_KEYS,
    WORKFLOW_REJECTED,
)
from workflow.validate_ignored import read_concurrency, read_permissions, read_workflow_call
from workflow.validate_inputs import read_inputs
from workflow.validate_job import read_job
from workflow.validate_reader import Reader, WorkflowDef, join, read_defaults
from workflow.yamlsafe import YMap, YNode


def read_workflow(root: YNode, errors: Errors) -> WorkflowDef:
    """Check the whole file; jobs are read by ``validate_job``."""
    reader = Reader(errors)
    result = WorkflowDef()
    top = reader.mapping(root, "", "a mapping with `jobs:` at the top of the file")
    if top is None:
        return result
    reader.keys(top, "", WORKFLOW_KEYS, WORKFLOW_IGNORED, WORKFLOW_REJECTED)
    if (name := top.get("name")) is not None:
        result.name = reader.string(name, "name", max_length=MAX_NAME_LENGTH) or ""
    _read_ignored(reader, top)
    if (env := top.get("env")) is not None:
        result.env = reader.env(env, "env", CTX_WORKFLOW_ENV)
    if (defaults := top.get("defaults")) is not None:
        result.defaults_shell, result.defaults_working_directory = read_defaults(
            reader, defaults, "defaults", None
        )
    if (on := top.get("on")) is not None:
        result.inputs = read_inputs(reader, on)
    jobs = top.get("jobs")
    if jobs is None:
        reader.error(top, "jobs", "the workflow has no `jobs:`; add at least one job")
        return result
    jobs_map = reader.mapping(jobs, "jobs", "a mapping of job ids to jobs")
    if jobs_map is None:
        return result
    result.jobs_node = jobs_map
    if not jobs_map.entries:
        reader.error(jobs_map, "jobs", "`jobs:` is empty; add at least one job")
    if len(jobs_map.entries) > MAX_JOBS:
        reader.error(
            jobs_map,
            "jobs",
            f"the workflow defines {len(jobs_map.entries):,} jobs; the limit is {MAX_JOBS}",
        )
        return result
    for job_id, entry in jobs_map.entries.items():
        path = join("jobs", job_id)
        # A job with an invalid id is still read: every error is reported at once.
        reader.identifier(job_id, entry.key, path, "job id", reserved=True)
        job = read_job(reader, job_id, entry.value, path, result)
        if job is not None:
            result.jobs[job_id] = job
    return result


def _read_ignored(reader: Reader, top: YMap) -> None:
    """The workflow keys that only mean something on GitHub, checked as GitHub does."""
    if (description := top.get("description")) is not None:
        reader.string(description, "description")
    if (run_name := top.get("run-name")) is not None:
        reader.string(run_name, "run-name", CTX_RUN_NAME)
    if (permissions := top.get("permissions")) is not None:
        read_permissions(reader, permissions, "permissions")
    if (concurrency := top.get("concurrency")) is not None:
        read_concurrency(reader, concurrency, "concurrency", CTX_WORKFLOW_CONCURRENCY)
    if (on := top.get("on")) is not None:
        read_workflow_call(reader, on)
