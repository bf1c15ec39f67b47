"""Checking declared build inputs (`on.workflow_dispatch.inputs`)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from workflow.inputs import InputValueError, convert_input
from workflow.model import InputSpec
from workflow.schema import INPUT_KEYS, INPUT_TYPES
from workflow.suggest import did_you_mean
from workflow.validate_reader import Reader, as_text, describe, join
from workflow.yamlsafe import YMap, YNode, YScalar, YSeq


def read_inputs(reader: Reader, on: YNode) -> dict[str, InputSpec]:
    """`on.workflow_dispatch.inputs`; the rest of `on` only means something on GitHub."""
    if not isinstance(on, YMap):
        return {}
    dispatch = on.get("workflow_dispatch")
    if not isinstance(dispatch, YMap) or (inputs := dispatch.get("inputs")) is None:
        return {}
    if isinstance(inputs, YScalar) and inputs.value is None:
        return {}  # `inputs:` left empty: GitHub accepts it as no inputs
    base = "on.workflow_dispatch.inputs"
    mapping = reader.mapping(inputs, base, "a mapping of input names to their declarations")
    result: dict[str, InputSpec] = {}
    for name, entry in mapping.entries.items() if mapping else ():
        path = join(base, name)
        if not reader.identifier(name, entry.key, path, "input name"):
            continue
        spec = read_input(reader, name, entry.value, path)
        if spec is not None:
            result[name] = spec
    return result


def read_input(reader: Reader, name: str, node: YNode, path: str) -> InputSpec | None:
    if isinstance(node, YScalar) and node.value is None:
        return InputSpec(name)
    decl = reader.mapping(node, path)
    if decl is None:
        return None
    reader.keys(decl, path, INPUT_KEYS)
    plain = {key: entry.value for key, entry in decl.entries.items()}
    kind = "string"
    if "type" in plain:
        kind = reader.string(plain["type"], join(path, "type")) or "string"
        if kind not in INPUT_TYPES:
            reader.error(
                plain["type"],
                join(path, "type"),
                f"unknown input type '{kind}'"
                f"{did_you_mean(kind, sorted(INPUT_TYPES))} (one of "
                f"{', '.join(sorted(INPUT_TYPES))})",
            )
            return None
    spec = InputSpec(name, type=kind)
    if "description" in plain:
        spec = _replace(
            spec, description=reader.string(plain["description"], join(path, "description")) or ""
        )
    if "required" in plain:
        req = plain["required"]
        if isinstance(req, YScalar) and isinstance(req.value, bool):
            spec = _replace(spec, required=req.value)
        else:
            reader.error(req, join(path, "required"), "expected true or false")
    if "options" in plain:
        opts = plain["options"]
        if kind != "choice":
            reader.error(opts, join(path, "options"), "`options` only applies to `type: choice`")
        elif (
            isinstance(opts, YSeq)
            and opts.items
            and all(isinstance(o, YScalar) and o.value is not None for o in opts.items)
        ):
            spec = _replace(
                spec, options=tuple(as_text(o.value) for o in opts.items if isinstance(o, YScalar))
            )
        else:
            reader.error(opts, join(path, "options"), "expected a non-empty list of strings")
    if kind == "choice" and not spec.options and "options" not in plain:
        reader.error(decl, join(path, "options"), "a `type: choice` input needs `options`")
    if "default" in plain:
        spec = _input_default(reader, spec, plain["default"], join(path, "default"))
    return spec


def _input_default(reader: Reader, spec: InputSpec, node: YNode, path: str) -> InputSpec:
    if not isinstance(node, YScalar):
        reader.error(node, path, f"expected a single value, found {describe(node)}")
        return spec
    if node.value is None:
        return spec
    try:
        value = convert_input(spec, node.value)
    except InputValueError as exc:
        reader.error(node, path, f"default: {exc}")
        return spec
    return _replace(spec, default=value)


def _replace(spec: InputSpec, **changes: Any) -> InputSpec:
    return replace(spec, **changes)
