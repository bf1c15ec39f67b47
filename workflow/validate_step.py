"""Checking a job's `steps:` list."""

from __future__ import annotations

from typing import Any

from workflow.model import StepSpec, Template
from workflow.schema import (
    CHECKOUT_ACTION,
    CTX_STEP,
    MAX_NAME_LENGTH,
    MAX_STEPS,
    MAX_TIMEOUT_MINUTES,
    STEP_KEYS,
    STEP_REJECTED,
    USES_FORMAT,
    unsupported_action_message,
)
from workflow.validate_reader import Reader, describe, join
from workflow.yamlsafe import YMap, YNode, YScalar, YSeq

StepTimeouts = dict[int, tuple[str, YNode]]

NESTED_LIST = (
    "a list inside `steps` is not spliced into it (GitHub does not either): "
    "write its steps out one by one"
)


def read_steps(reader: Reader, node: YNode, path: str) -> tuple[tuple[StepSpec, ...], StepTimeouts]:
    """Check every step; a template `timeout-minutes` is returned apart (planned later)."""
    if not isinstance(node, YSeq):
        reader.error(node, path, f"expected a list of steps, found {describe(node)}")
        return (), {}
    if not node.items:
        reader.error(node, path, "the job has no steps; add at least one")
        return (), {}
    if len(node.items) > MAX_STEPS:
        reader.error(node, path, f"the job has {len(node.items)} steps; the limit is {MAX_STEPS}")
        return (), {}
    steps: list[StepSpec] = []
    timeouts: StepTimeouts = {}
    seen_ids: dict[str, YNode] = {}  # lower-cased: GitHub compares step ids ignoring case
    for index, item in enumerate(node.items):
        where = f"{path}[{index}]"
        if isinstance(item, YSeq):
            reader.error(item, where, NESTED_LIST)
            continue
        step = reader.mapping(item, where, "a step (a mapping with `run` or `uses`)")
        if step is None:
            continue
        spec = _step(reader, step, where, index, timeouts)
        id_node = step.get("id")
        step_id = spec.id if spec is not None else _written_id(id_node)
        if step_id is not None and id_node is not None:
            first = seen_ids.get(step_id.lower())
            if first is not None:
                _duplicate_id(reader, step_id, id_node, first, join(where, "id"))
            else:
                seen_ids[step_id.lower()] = id_node
        if spec is not None:
            steps.append(spec)
    return tuple(steps), timeouts


def _written_id(node: YNode | None) -> str | None:
    if isinstance(node, YScalar) and isinstance(node.value, str) and node.value:
        return node.value
    return None


def _duplicate_id(reader: Reader, step_id: str, at: YNode, first: YNode, path: str) -> None:
    assert isinstance(first, YScalar)
    written = "" if first.text == step_id else f" as '{first.text}'"
    reader.error(
        at,
        path,
        f"step id '{step_id}' is used twice (first at line {first.line}{written}); "
        "step ids must be unique, ignoring case",
    )


def _step(
    reader: Reader, step: YMap, path: str, index: int, timeouts: StepTimeouts
) -> StepSpec | None:
    """Check every key of one step (all of them, even when one is refused); the step, or
    None when it cannot run."""
    reader.keys(step, path, STEP_KEYS, rejected=STEP_REJECTED)
    fields: dict[str, Any] = {}
    runnable = True
    run, uses = step.get("run"), step.get("uses")
    if run is not None and uses is not None:
        reader.error(
            step.entries["uses"].key,
            join(path, "uses"),
            "a step has either `run` or `uses`, not both",
        )
        runnable = False
    elif run is None and uses is None:
        # A step made of a rejected key (`parallel:`, `wait:`…) already has its error.
        if not any(key in STEP_REJECTED for key in step.entries):
            reader.error(step, path, "the step has neither `run` nor `uses`: add a `run` script")
        runnable = False
    default_name = "Run"
    if run is not None:
        script = reader.string(run, join(path, "run"), CTX_STEP)
        if script is None:
            runnable = False
        else:
            fields["run"] = script  # may be empty: GitHub runs an empty script, and so do we
            first = script.strip().splitlines()[0] if script.strip() else ""
            default_name = f"Run {first}" if first else "Run"
    if uses is not None:
        action = _uses(reader, uses, join(path, "uses"))
        if action is None:
            runnable = False
        elif run is None:
            fields["uses"] = action
            default_name = f"Run {action}"
    _with(reader, step, path, fields, uses_step=uses is not None)
    fields["name"] = default_name
    if (name_node := step.get("name")) is not None:
        fields["name"] = (
            reader.string(name_node, join(path, "name"), CTX_STEP, max_length=MAX_NAME_LENGTH)
            or default_name
        )
    if (id_node := step.get("id")) is not None:
        step_id = reader.string(id_node, join(path, "id"))
        if step_id is not None and reader.identifier(
            step_id, id_node, join(path, "id"), "step id", reserved=True
        ):
            fields["id"] = step_id
    if (env := step.get("env")) is not None:
        fields["env"] = reader.env(env, join(path, "env"), CTX_STEP)
    if (cond := step.get("if")) is not None:
        fields["if_"] = read_condition(reader, cond, join(path, "if"), CTX_STEP)
    if (shell := step.get("shell")) is not None:
        if run is None:
            reader.error(
                step.entries["shell"].key,
                join(path, "shell"),
                "`shell` only applies to `run` steps",
            )
        fields["shell"] = reader.shell(shell, join(path, "shell"))
    if (workdir := step.get("working-directory")) is not None:
        fields["working_directory"] = reader.string(
            workdir, join(path, "working-directory"), CTX_STEP
        )
    if (coe := step.get("continue-on-error")) is not None:
        flag = reader.boolean_or_expr(coe, join(path, "continue-on-error"), CTX_STEP)
        if flag is not None:
            fields["continue_on_error"] = flag
    if (timeout := step.get("timeout-minutes")) is not None:
        value = reader.number_or_expr(
            timeout, join(path, "timeout-minutes"), CTX_STEP, float, MAX_TIMEOUT_MINUTES
        )
        if isinstance(value, str):
            timeouts[index] = (value, timeout)
        elif value is not None:
            fields["timeout_minutes"] = value
    return StepSpec(index=index, **fields) if runnable else None


def _with(reader: Reader, step: YMap, path: str, fields: dict[str, Any], uses_step: bool) -> None:
    with_node = step.get("with")
    if with_node is None:
        return
    if not uses_step:
        reader.error(
            step.entries["with"].key,
            join(path, "with"),
            "`with` only applies to `uses` steps; use `env` to pass values to `run`",
        )
        return
    fields["with_"] = reader.env(with_node, join(path, "with"), CTX_STEP)


def read_condition(reader: Reader, node: YNode, path: str, contexts: frozenset[str]) -> str | None:
    """An `if:` (of a job or a step): None means the default, ``success()``."""
    if not isinstance(node, YScalar):
        reader.error(node, path, f"expected a condition, found {describe(node)}")
        return None
    if isinstance(node.value, str) and not node.value.strip():
        return None  # GitHub reads an empty condition as success()
    return reader.exprs.condition(node, path, contexts)


def _uses(reader: Reader, node: YNode, path: str) -> Template | None:
    """The action of a `uses:`, or None (with its errors) when it cannot run here."""
    action = reader.string(node, path)
    if action is None:
        return None
    well_formed = _well_formed(action)
    if not well_formed:
        reader.error(node, path, f"{USES_FORMAT}. Actual '{action}'")
    name = action.split("@", 1)[0].strip().lower()
    if name != CHECKOUT_ACTION:
        reader.error(node, path, unsupported_action_message(action))
        return None
    return action if well_formed else None


def _well_formed(action: str) -> bool:
    """GitHub's rule for a repository action: `{org}/{repo}[/path]@ref`, all non-empty
    (docker:// images and ./local actions have their own forms)."""
    if action.startswith(("docker://", "./", ".\\")):
        return True
    parts = action.split("@")
    if len(parts) != 2 or not parts[1]:
        return False
    segments = [s for s in parts[0].replace("\\", "/").split("/") if s]
    return len(segments) >= 2
