"""Checking one `jobs.<id>` entry (its steps are read by ``validate_step``)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from workflow.model import JobSpec, Resources, Template
from workflow.schema import (
    CONTAINER_KEYS,
    CONTAINER_REJECTED,
    CTX_CONTAINER_ENV,
    CTX_DEFAULTS,
    CTX_JOB,
    CTX_JOB_CONCURRENCY,
    CTX_JOB_IF,
    CTX_OUTPUTS,
    CTX_STRATEGY,
    JOB_IGNORED,
    JOB_KEYS,
    JOB_REJECTED,
    MAX_NAME_LENGTH,
    MAX_TIMEOUT_MINUTES,
    QUANTITY_RE,
    RESOURCES_KEYS,
    REUSABLE_KEYS,
    STRATEGY_KEYS,
)
from workflow.suggest import did_you_mean
from workflow.validate_ignored import read_concurrency, read_number, read_permissions
from workflow.validate_reader import (
    JobDef,
    Reader,
    WorkflowDef,
    as_text,
    describe,
    join,
    read_defaults,
)
from workflow.validate_step import read_condition, read_steps
from workflow.yamlsafe import YMap, YNode, YScalar, YSeq, walk_paths

DYNAMIC_MATRIX = (
    "dynamic matrices are not supported: matrix values may use only `inputs` and `github` "
    "(known when the build starts), not the results of other jobs"
)


def read_job(
    reader: Reader, job_id: str, node: YNode, path: str, workflow: WorkflowDef
) -> JobDef | None:
    """Check one job; None when it is not even a mapping."""
    job = reader.mapping(node, path, "a mapping (the job's definition)")
    if job is None:
        return None
    calls_workflow = "uses" in job.entries
    if calls_workflow:
        # `with` and `secrets` belong to the `uses` call, which has its own error.
        rejected = {k: v for k, v in JOB_REJECTED.items() if k not in REUSABLE_KEYS}
        reader.keys(job, path, JOB_KEYS, JOB_IGNORED | REUSABLE_KEYS, rejected)
    else:
        reader.keys(job, path, JOB_KEYS, JOB_IGNORED, JOB_REJECTED)
    _read_ignored(reader, job, path)
    fields: dict[str, Any] = {}
    result = JobDef(job_id, job, JobSpec(key=job_id, job_id=job_id, name=job_id))

    if (name := job.get("name")) is not None:
        text = reader.string(name, join(path, "name"), CTX_JOB, max_length=MAX_NAME_LENGTH)
        if text:
            fields["name"] = text
    if (needs := job.get("needs")) is not None:
        result.needs_nodes = _needs(reader, needs, join(path, "needs"), job_id, workflow)
        fields["needs_ids"] = tuple(result.needs_nodes)
        fields["needs"] = tuple(result.needs_nodes)
    if (cond := job.get("if")) is not None:
        fields["if_"] = read_condition(reader, cond, join(path, "if"), CTX_JOB_IF)
    runs_on = job.get("runs-on")
    if runs_on is not None:
        fields["runs_on"] = _runs_on(reader, runs_on, join(path, "runs-on"))
    if (container := job.get("container")) is not None:
        fields["image"], fields["container_env"] = _container(
            reader, container, join(path, "container")
        )
    # Unlike GitHub, `runs-on` is optional: without it the job runs on the executor's
    # default image (Kubernetes) or as a plain local process (`conveyor run`).
    if (env := job.get("env")) is not None:
        fields["env"] = reader.env(env, join(path, "env"), CTX_JOB)
    if (defaults := job.get("defaults")) is not None:
        shell, workdir = read_defaults(reader, defaults, join(path, "defaults"), CTX_DEFAULTS)
        fields["defaults_shell"], fields["defaults_working_directory"] = shell, workdir
    if (timeout := job.get("timeout-minutes")) is not None:
        value = reader.number_or_expr(
            timeout, join(path, "timeout-minutes"), CTX_JOB, float, MAX_TIMEOUT_MINUTES
        )
        if value is not None:
            result.timeout, result.timeout_node = value, timeout
    if (coe := job.get("continue-on-error")) is not None:
        flag = reader.boolean_or_expr(coe, join(path, "continue-on-error"), CTX_JOB)
        if flag is not None:
            fields["continue_on_error"] = flag
    if (strategy := job.get("strategy")) is not None:
        _strategy(reader, strategy, join(path, "strategy"), result)
    if (outputs := job.get("outputs")) is not None:
        fields["outputs"] = _outputs(reader, outputs, join(path, "outputs"))
    if (resources := job.get("resources")) is not None:
        fields["resources"] = _resources(reader, resources, join(path, "resources"))
    steps = job.get("steps")
    if steps is None:
        if not calls_workflow:  # a reusable workflow's job has no steps; `uses` says why
            reader.error(job, join(path, "steps"), "the job has no `steps:`; add at least one step")
    else:
        fields["steps"], result.step_timeouts = read_steps(reader, steps, join(path, "steps"))
    result.proto = replace(result.proto, **fields)
    return result


def _read_ignored(reader: Reader, job: YMap, path: str) -> None:
    """The job keys that only mean something on GitHub, checked as GitHub does."""
    if (permissions := job.get("permissions")) is not None:
        read_permissions(reader, permissions, join(path, "permissions"))
    if (concurrency := job.get("concurrency")) is not None:
        read_concurrency(reader, concurrency, join(path, "concurrency"), CTX_JOB_CONCURRENCY)
    if (cancel := job.get("cancel-timeout-minutes")) is not None:
        read_number(reader, cancel, join(path, "cancel-timeout-minutes"), CTX_JOB_CONCURRENCY)


def _needs(
    reader: Reader, node: YNode, path: str, job_id: str, workflow: WorkflowDef
) -> dict[str, YScalar]:
    items: list[tuple[YNode, str]]
    if isinstance(node, YSeq):
        items = [(item, f"{path}[{i}]") for i, item in enumerate(node.items)]
    else:
        items = [(node, path)]
    known = list(workflow.jobs_node.entries) if workflow.jobs_node else []
    result: dict[str, YScalar] = {}
    for item, where in items:
        if not isinstance(item, YScalar) or not isinstance(item.value, str):
            reader.error(item, where, f"expected a job id, found {describe(item)}")
            continue
        name = item.value
        if name == job_id:
            reader.error(item, where, f"job '{job_id}' cannot need itself")
        elif name not in known:
            others = [k for k in known if k != job_id]
            reader.error(item, where, f"unknown job '{name}'{did_you_mean(name, others)}")
        elif name in result:
            reader.error(item, where, f"'{name}' is listed twice")
        else:
            result[name] = item
    return result


def _runs_on(reader: Reader, node: YNode, path: str) -> Any:
    if isinstance(node, YSeq):
        labels = [reader.string(item, f"{path}[{i}]", CTX_JOB) for i, item in enumerate(node.items)]
        if not labels:
            reader.error(node, path, "`runs-on` is an empty list; name at least one label")
        return [label for label in labels if label is not None]
    if isinstance(node, YMap):
        reader.error(
            node,
            path,
            "runner groups (`runs-on: {group, labels}`) are not "
            "supported: give a label or a list of labels",
        )
        return None
    return reader.string(node, path, CTX_JOB)


def _container(
    reader: Reader, node: YNode, path: str
) -> tuple[Template | None, dict[str, Template]]:
    if isinstance(node, YScalar):
        return reader.string(node, path, CTX_JOB), {}
    spec = reader.mapping(node, path, "an image name or a mapping with `image`")
    if spec is None:
        return None, {}
    reader.keys(spec, path, CONTAINER_KEYS, rejected=CONTAINER_REJECTED)
    image = None
    if (image_node := spec.get("image")) is not None:
        image = reader.string(image_node, join(path, "image"), CTX_JOB)
    else:
        reader.error(spec, join(path, "image"), "`container` needs an `image`")
    env: dict[str, Template] = {}
    if (env_node := spec.get("env")) is not None:
        env = reader.env(env_node, join(path, "env"), CTX_CONTAINER_ENV)
    return image, env


def _outputs(reader: Reader, node: YNode, path: str) -> dict[str, Template]:
    mapping = reader.mapping(node, path, "a mapping of output names to values")
    result: dict[str, Template] = {}
    for name, entry in mapping.entries.items() if mapping else ():
        where = join(path, name)
        if reader.identifier(name, entry.key, where, "output name"):
            value = reader.string(entry.value, where, CTX_OUTPUTS)
            if value is not None:
                result[name] = value
    return result


def _resources(reader: Reader, node: YNode, path: str) -> Resources:
    mapping = reader.mapping(node, path, "a mapping with `cpu` and/or `memory`")
    if mapping is None:
        return Resources()
    reader.keys(mapping, path, RESOURCES_KEYS)
    values: dict[str, str] = {}
    for key in ("cpu", "memory"):
        value = mapping.get(key)
        if value is None:
            continue
        text = as_text(value.value) if isinstance(value, YScalar) else ""
        if not QUANTITY_RE.match(text):
            example = "'500m' or 2" if key == "cpu" else "'512Mi' or '2Gi'"
            reader.error(
                value,
                join(path, key),
                f"'{text}' is not a Kubernetes quantity (for example {example})",
            )
        else:
            values[key] = text
    return Resources(cpu=values.get("cpu"), memory=values.get("memory"))


def _strategy(reader: Reader, node: YNode, path: str, job: JobDef) -> None:
    strategy = reader.mapping(node, path)
    if strategy is None:
        return
    reader.keys(strategy, path, STRATEGY_KEYS)
    if (fail_fast := strategy.get("fail-fast")) is not None:
        flag = reader.boolean_or_expr(fail_fast, join(path, "fail-fast"), CTX_STRATEGY)
        if flag is not None:
            job.fail_fast = flag
    if (max_parallel := strategy.get("max-parallel")) is not None:
        job.max_parallel = reader.number_or_expr(
            max_parallel, join(path, "max-parallel"), CTX_STRATEGY, _whole
        )
    if (matrix := strategy.get("matrix")) is not None:
        job.matrix = matrix
        _matrix_shape(reader, matrix, join(path, "matrix"))


def _whole(value: float) -> int:
    return max(1, int(value))


def _matrix_shape(reader: Reader, node: YNode, path: str) -> None:
    if _template(reader, node, path):
        return
    matrix = reader.mapping(node, path, "a mapping of matrix variables to lists of values")
    if matrix is None:
        return
    if not matrix.entries:
        reader.error(matrix, path, "the matrix is empty; give it at least one variable")
    for key, entry in matrix.entries.items():
        where = join(path, key)
        value = entry.value
        _check_matrix_templates(reader, value, where)
        if isinstance(value, YScalar) and _is_template(value):
            continue
        if key in ("include", "exclude"):
            if not isinstance(value, YSeq) or not all(
                isinstance(item, YMap) for item in value.items
            ):
                reader.error(value, where, f"`{key}` must be a list of mappings")
        elif not isinstance(value, YSeq):
            reader.error(
                value,
                where,
                f"matrix variable '{key}' must be a list of values, found {describe(value)}",
            )
        elif not value.items:
            reader.error(value, where, f"matrix variable '{key}' has no values")


def _template(reader: Reader, node: YNode, path: str) -> bool:
    if isinstance(node, YScalar) and _is_template(node):
        reader.exprs.template(node, path, CTX_STRATEGY, unavailable=DYNAMIC_MATRIX)
        return True
    return False


def _is_template(node: YScalar) -> bool:
    return isinstance(node.value, str) and "${{" in node.value


def _check_matrix_templates(reader: Reader, node: YNode, path: str) -> None:
    for where, scalar in walk_paths(node, path):
        if _is_template(scalar):
            reader.exprs.template(scalar, where, CTX_STRATEGY, unavailable=DYNAMIC_MATRIX)
