"""From a checked workflow definition to the Plan: matrices expanded, needs resolved.

Templates that depend only on values known now (``matrix``, ``strategy``, and
``inputs``/``github`` when the caller gave them) are substituted; every other template
stays as written for the engine to evaluate when the job starts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from types import MappingProxyType
from typing import Any

from workflow.dag import find_cycles, topological
from workflow.diagnostics import Errors
from workflow.expressions import (
    ExpressionError,
    evaluate_node,
    find_templates,
    named_values,
    parse,
    to_bool,
    to_string,
)
from workflow.inputs import default_inputs
from workflow.matrix import MatrixError, combinations, job_keys, render_value
from workflow.model import JobSpec, Plan, StepSpec
from workflow.schema import MAX_COMBINATIONS, MAX_JOBS, MAX_TIMEOUT_MINUTES
from workflow.validate_reader import JobDef, WorkflowDef, join
from workflow.yamlsafe import YMap, YNode, to_plain


class _Unresolved(Exception):
    """A value that had to be known at plan time uses a context known only later."""


class _Located(Exception):
    """A planning error that belongs to one key of the job (reported there)."""

    def __init__(self, node: YNode | None, path: str, message: str) -> None:
        super().__init__(message)
        self.node, self.path = node, path


class Planner:
    def __init__(
        self,
        workflow: WorkflowDef,
        errors: Errors,
        inputs: Mapping[str, Any] | None,
        github: Mapping[str, Any] | None,
    ) -> None:
        self.wf = workflow
        self.errors = errors
        self.known = {"matrix", "strategy"}
        if inputs is not None:
            self.known.add("inputs")
        if github is not None:
            self.known.add("github")
        self.base: dict[str, Any] = {
            "inputs": dict(inputs) if inputs is not None else default_inputs(workflow.inputs),
            "github": dict(github or {}),
        }

    def plan(self) -> Plan | None:
        """The plan, or None when errors were added."""
        if check_cycles(self.wf, self.errors):
            return None
        graph = {job_id: list(job.needs_nodes) for job_id, job in self.wf.jobs.items()}
        expanded: dict[str, list[JobSpec]] = {}
        total = 0
        for job_id in topological(graph):
            specs = self._expand(self.wf.jobs[job_id])
            total += len(specs)
            if total > MAX_JOBS:
                self.errors.add(
                    self.wf.jobs_node,
                    "jobs",
                    f"the workflow expands to more than "
                    f"{MAX_JOBS} jobs (matrices included); the limit is {MAX_JOBS}",
                )
                return None
            expanded[job_id] = specs
        jobs: list[JobSpec] = []
        for specs in expanded.values():
            for spec in specs:
                keys = tuple(k for need in spec.needs_ids for k in _keys(expanded.get(need, [])))
                jobs.append(replace(spec, needs=keys))
        if self.errors:
            return None
        return Plan(
            name=self.wf.name,
            jobs=tuple(jobs),
            env=MappingProxyType(dict(self.wf.env)),
            inputs=MappingProxyType(dict(self.wf.inputs)),
            defaults_shell=self.wf.defaults_shell,
            defaults_working_directory=self.wf.defaults_working_directory,
        )

    def _expand(self, job: JobDef) -> list[JobSpec]:
        path = join("jobs", job.job_id)
        strategy_path = join(path, "strategy")
        try:
            fail_fast = self._flag(job.fail_fast, self.base)
            max_parallel = self._count(job.max_parallel)
        except (ExpressionError, _Unresolved, ValueError) as exc:
            self.errors.add(job.node.get("strategy"), strategy_path, str(exc))
            return []
        combos: list[dict[str, Any]] = [{}]
        if job.matrix is not None:
            try:
                matrix = self._resolve(to_plain(job.matrix), self.base)
                if not isinstance(matrix, dict):
                    raise MatrixError("the matrix must be a mapping of variables to lists")
                combos = combinations(matrix, MAX_COMBINATIONS)
            except MatrixError as exc:
                self._matrix_error(job.matrix, join(strategy_path, "matrix"), exc)
                return []
            except (ExpressionError, _Unresolved) as exc:
                self.errors.add(job.matrix, join(strategy_path, "matrix"), str(exc))
                return []
        keys = job_keys(job.job_id, combos) if job.matrix is not None else [job.job_id]
        specs = []
        for index, (key, combo) in enumerate(zip(keys, combos, strict=True)):
            strategy = {
                "fail-fast": fail_fast,
                "job-index": index,
                "job-total": len(combos),
                "max-parallel": max_parallel or len(combos),
            }
            contexts = {**self.base, "matrix": combo, "strategy": strategy}
            try:
                spec = self._job(job, key, combo, contexts)
            except _Located as exc:
                leg = f"{key}: " if job.matrix is not None else ""
                self.errors.add(exc.node or job.node, exc.path, f"{leg}{exc}")
                return []
            except (ExpressionError, _Unresolved, ValueError) as exc:
                self.errors.add(job.node, path, f"{key}: {exc}")
                return []
            specs.append(
                replace(
                    spec,
                    fail_fast=fail_fast,
                    max_parallel=max_parallel,
                    matrix_index=index,
                    matrix_total=len(combos),
                )
            )
        return specs

    def _matrix_error(self, node: YNode, path: str, exc: MatrixError) -> None:
        if exc.key and isinstance(node, YMap) and exc.key in node.entries:
            self.errors.add(node.entries[exc.key].key, join(path, exc.key), str(exc))
        else:
            self.errors.add(node, path, str(exc))

    def _job(self, job: JobDef, key: str, combo: dict[str, Any], ctx: dict[str, Any]) -> JobSpec:
        proto = job.proto
        sub = self._sub
        name = sub(proto.name, ctx, final=True)
        if combo and "name" in job.node.entries and "${{" not in proto.name:
            name = f"{name} ({', '.join(render_value(v) for v in combo.values())})"
        elif "name" not in job.node.entries:
            name = key
        runs_on = proto.runs_on
        if isinstance(runs_on, str):
            runs_on = sub(runs_on, ctx)
        elif isinstance(runs_on, list):
            runs_on = [sub(label, ctx) for label in runs_on]
        timeout = proto.timeout_minutes
        if isinstance(job.timeout, str):
            where = join(join("jobs", job.job_id), "timeout-minutes")
            timeout = self._located(job.timeout, ctx, job.timeout_node, where)
        elif job.timeout_node is not None:
            timeout = job.timeout
        return replace(
            proto,
            key=key,
            name=name,
            matrix=MappingProxyType(combo),
            runs_on=runs_on,
            image=sub(proto.image, ctx) if proto.image is not None else None,
            container_env=self._sub_map(proto.container_env, ctx),
            env=self._sub_map(proto.env, ctx),
            timeout_minutes=timeout,
            continue_on_error=self._maybe_flag(proto.continue_on_error, ctx),
            steps=tuple(self._step(job, step, ctx) for step in proto.steps),
            outputs=MappingProxyType(dict(proto.outputs)),
        )

    def _step(self, job: JobDef, step: StepSpec, ctx: dict[str, Any]) -> StepSpec:
        sub = self._sub
        timeout = step.timeout_minutes
        if step.index in job.step_timeouts:
            template, node = job.step_timeouts[step.index]
            where = f"{join('jobs', job.job_id)}.steps[{step.index}].timeout-minutes"
            timeout = self._located(template, ctx, node, where)
        try:
            name = sub(step.name, ctx)
        except ExpressionError:
            # Only a default `Run <first line>` can get here (`validate` checked the
            # others): its line may hold half of a multi-line `${{ }}`. Shown as written.
            name = step.name
        return replace(
            step,
            name=name,
            run=sub(step.run, ctx) if step.run is not None else None,
            with_=self._sub_map(step.with_, ctx),
            env=self._sub_map(step.env, ctx),
            working_directory=(
                sub(step.working_directory, ctx) if step.working_directory is not None else None
            ),
            continue_on_error=self._maybe_flag(step.continue_on_error, ctx),
            timeout_minutes=timeout,
        )

    def _sub(self, text: str, ctx: Mapping[str, Any], *, final: bool = False) -> str:
        """Substitute the templates of ``text`` that use only plan-time contexts.

        Unless the result is ``final``, its remaining templates are evaluated when the
        job starts: a value that holds ``${{`` (an input, a matrix value) is pasted as
        a string literal template then, so it is text, never evaluated a second time."""
        if "${{" not in text:
            return text
        parts: list[str] = []
        last = 0
        for start, end, inner in find_templates(text):
            node = parse(inner)
            if named_values(node) <= self.known:
                value = to_string(evaluate_node(node, ctx, expression=inner))
                if "${{" in value and not final:
                    value = "${{ '" + value.replace("'", "''") + "' }}"
                parts.append(text[last:start] + value)
                last = end
        return "".join(parts) + text[last:]

    def _sub_map(self, values: Mapping[str, str], ctx: Mapping[str, Any]) -> Mapping[str, str]:
        return MappingProxyType({k: self._sub(v, ctx) for k, v in values.items()})

    def _maybe_flag(self, value: bool | str, ctx: Mapping[str, Any]) -> bool | str:
        """An expression flag becomes a bool when it is known now."""
        if isinstance(value, bool):
            return value
        node = parse(value)
        if named_values(node) <= self.known:
            return to_bool(evaluate_node(node, ctx, expression=value))
        return value

    def _flag(self, value: bool | str, ctx: Mapping[str, Any]) -> bool:
        if isinstance(value, bool):
            return value
        return to_bool(evaluate_node(parse(value), ctx, expression=value))

    def _count(self, value: int | str | None) -> int | None:
        if value is None or isinstance(value, int):
            return value
        number = self._number(value, self.base, "max-parallel")
        return max(1, int(number))

    def _located(
        self, template: str, ctx: Mapping[str, Any], node: YNode | None, path: str
    ) -> float:
        """A `timeout-minutes` template's value; its errors point at the key."""
        try:
            return self._number(template, ctx, "timeout-minutes")
        except (ExpressionError, _Unresolved, ValueError) as exc:
            raise _Located(node, path, str(exc)) from None

    def _number(self, template: str, ctx: Mapping[str, Any], what: str) -> float:
        for _start, _end, inner in find_templates(template):
            unknown = named_values(parse(inner)) - set(ctx)
            if unknown:
                raise _Unresolved(
                    f"`{what}` must be known when the build starts: it may use "
                    f"matrix, strategy, inputs and github, not {sorted(unknown)}"
                )
        text = self._sub_all(template, ctx)
        try:
            number = float(text)
        except ValueError:
            raise ValueError(f"`{what}` is '{text}', not a number") from None
        if not number > 0:
            raise ValueError(f"`{what}` must be a positive number, not {text}")
        if what == "timeout-minutes" and number > MAX_TIMEOUT_MINUTES:
            raise ValueError(f"`{what}` is {text}; the limit is {MAX_TIMEOUT_MINUTES:,}")
        return number

    def _sub_all(self, text: str, ctx: Mapping[str, Any]) -> str:
        parts, last = [], 0
        for start, end, inner in find_templates(text):
            value = evaluate_node(parse(inner), ctx, expression=inner)
            parts.append(text[last:start] + to_string(value))
            last = end
        return "".join(parts) + text[last:]

    def _resolve(self, value: Any, ctx: Mapping[str, Any]) -> Any:
        """Matrix values: a whole ``${{ }}`` keeps its type (``fromJSON`` lists), templates
        inside text are interpolated."""
        if isinstance(value, str) and "${{" in value:
            spans = find_templates(value)
            if len(spans) == 1 and spans[0][0] == 0 and spans[0][1] == len(value):
                return evaluate_node(parse(spans[0][2]), ctx, expression=spans[0][2])
            return self._sub_all(value, ctx)
        if isinstance(value, list):
            items = [self._resolve(item, ctx) for item in value]
            pairs = zip(value, items, strict=True)
            if any(isinstance(new, list) and _whole(old) for old, new in pairs):
                raise MatrixError(SPLICE)
            return items
        if isinstance(value, dict):
            resolved: dict[str, Any] = {}
            for key, item in value.items():
                try:
                    resolved[key] = self._resolve(item, ctx)
                except MatrixError as exc:  # name the variable that holds the list
                    raise MatrixError(str(exc), key) from None
            return resolved
        return value


SPLICE = (
    "a list item that is one `${{ }}` giving a list is spliced into its list on GitHub; "
    "splicing is not supported: give the whole list as one expression instead "
    "(`name: ${{ fromJSON(...) }}`)"
)


def _whole(value: Any) -> bool:
    """Whether ``value`` is exactly one ``${{ }}`` template."""
    if not isinstance(value, str) or not value.startswith("${{"):
        return False
    spans = find_templates(value)
    return len(spans) == 1 and spans[0][0] == 0 and spans[0][1] == len(value)


def check_cycles(workflow: WorkflowDef, errors: Errors) -> bool:
    """Report every dependency cycle with its path; True when there is one."""
    graph = {job_id: list(job.needs_nodes) for job_id, job in workflow.jobs.items()}
    cycles = find_cycles(graph)
    for cycle in cycles:
        first = workflow.jobs[cycle[0]]
        node = first.needs_nodes.get(cycle[1]) or first.node
        path = join(join("jobs", cycle[0]), "needs")
        errors.add(node, path, "dependency cycle: " + " → ".join(cycle))
    return bool(cycles)


def _keys(specs: list[JobSpec]) -> list[str]:
    return [spec.key for spec in specs]
