"""Keys Conveyor ignores, checked as GitHub checks them.

`permissions`, `concurrency`, `run-name`, `description`, `cancel-timeout-minutes` and
`on.workflow_call` change nothing here, but a file with an invalid value in one of them
is refused by GitHub: it is refused here too, so that what `validate` accepts runs on
both.
"""

from __future__ import annotations

import math

from workflow.schema import (
    CALL_INPUT_KEYS,
    CALL_INPUT_TYPES,
    CALL_OUTPUT_KEYS,
    CALL_SECRET_KEYS,
    CONCURRENCY_KEYS,
    CONCURRENCY_QUEUES,
    CTX_CALL_INPUT_DEFAULT,
    CTX_CALL_OUTPUT,
    MAX_CONCURRENCY_GROUP,
    PERMISSION_SCOPES,
    PERMISSION_SHORTHANDS,
    WORKFLOW_CALL_KEYS,
)
from workflow.suggest import did_you_mean
from workflow.validate_reader import Reader, describe, join
from workflow.yamlsafe import YMap, YNode, YScalar


def read_permissions(reader: Reader, node: YNode, path: str) -> None:
    """`permissions`: `read-all`, `write-all`, or scopes mapped to read, write or none."""
    if isinstance(node, YScalar):
        text = reader.string(node, path)
        if text is not None and text not in PERMISSION_SHORTHANDS:
            reader.error(
                node,
                path,
                f"'{text}' is not a permission: use read-all, write-all, or a mapping "
                f"of scopes to read, write or none{did_you_mean(text, PERMISSION_SHORTHANDS)}",
            )
        return
    mapping = reader.mapping(node, path, "read-all, write-all or a mapping of scopes")
    for scope, entry in mapping.entries.items() if mapping else ():
        where = join(path, scope)
        levels = PERMISSION_SCOPES.get(scope)
        if levels is None:
            hint = did_you_mean(scope, sorted(PERMISSION_SCOPES))
            reader.error(entry.key, where, f"unknown permission scope '{scope}'{hint}")
            continue
        level = reader.string(entry.value, where)
        if level is not None and level not in levels:
            reader.error(
                entry.value,
                where,
                f"'{level}' is not a permission level for '{scope}' "
                f"(use {', '.join(levels[:-1])} or {levels[-1]})",
            )


def read_concurrency(reader: Reader, node: YNode, path: str, contexts: frozenset[str]) -> None:
    """`concurrency`: a group name, or `{group, cancel-in-progress, queue}`."""
    if isinstance(node, YScalar):
        _group(reader, node, path, contexts)
        return
    mapping = reader.mapping(node, path, "a group name or a mapping with `group`")
    if mapping is None:
        return
    reader.keys(mapping, path, CONCURRENCY_KEYS)
    if (group := mapping.get("group")) is not None:
        _group(reader, group, join(path, "group"), contexts)
    elif not any(_is_template(key) for key in mapping.entries):
        reader.error(mapping, join(path, "group"), "`concurrency` needs a `group`")
    if (cancel := mapping.get("cancel-in-progress")) is not None:
        reader.boolean_or_expr(cancel, join(path, "cancel-in-progress"), contexts)
    if (queue := mapping.get("queue")) is not None:
        text = reader.string(queue, join(path, "queue"), contexts)
        if text is not None and not _is_template(text) and text not in CONCURRENCY_QUEUES:
            reader.error(
                queue,
                join(path, "queue"),
                f"'{text}' is not a concurrency queue (use {' or '.join(CONCURRENCY_QUEUES)})",
            )


def _group(reader: Reader, node: YNode, path: str, contexts: frozenset[str]) -> None:
    text = reader.string(node, path, contexts)
    if text is None or _is_template(text):
        return
    if not text:
        reader.error(node, path, "the concurrency group name is empty")
    elif len(text) > MAX_CONCURRENCY_GROUP:
        reader.error(
            node,
            path,
            f"the concurrency group name is {len(text)} characters long; GitHub's "
            f"limit is {MAX_CONCURRENCY_GROUP}",
        )


def read_number(reader: Reader, node: YNode, path: str, contexts: frozenset[str]) -> None:
    """A number or a `${{ }}` expression (`cancel-timeout-minutes`)."""
    if isinstance(node, YScalar):
        value = node.value
        if isinstance(value, int | float) and not isinstance(value, bool):
            if not math.isnan(value):
                return
        elif isinstance(value, str) and reader.whole_template(node, path, contexts) is not None:
            return
    found = describe(node)
    reader.error(node, path, f"expected a number or a `${{{{ }}}}` expression, found {found}")


def read_workflow_call(reader: Reader, on: YNode) -> None:
    """`on.workflow_call`: the interface of a reusable workflow (which Conveyor does not
    run, but whose shape GitHub checks on every file)."""
    if not isinstance(on, YMap) or (call := on.get("workflow_call")) is None:
        return
    base = "on.workflow_call"
    if isinstance(call, YScalar) and call.value is None:
        return
    mapping = reader.mapping(call, base, "a mapping with `inputs`, `secrets` or `outputs`")
    if mapping is None:
        return
    reader.keys(mapping, base, WORKFLOW_CALL_KEYS)
    for key, reader_of in (("inputs", _call_input), ("secrets", _call_secret)):
        if (node := mapping.get(key)) is not None:
            for value, where in _named(reader, node, join(base, key), key):
                reader_of(reader, value, where)
    if (outputs := mapping.get("outputs")) is not None:
        for value, where in _named(reader, outputs, join(base, "outputs"), "outputs"):
            _call_output(reader, value, where)


def _named(reader: Reader, node: YNode, path: str, what: str) -> list[tuple[YNode, str]]:
    """The declarations of a mapping of names, with their paths."""
    mapping = reader.mapping(node, path, f"a mapping of names to {what} declarations")
    entries = mapping.entries.items() if mapping else ()
    return [(entry.value, join(path, name)) for name, entry in entries]


def _call_input(reader: Reader, node: YNode, path: str) -> None:
    what = "a mapping with `type` and, optionally, `description`, `required` and `default`"
    decl = reader.mapping(node, path, what)
    if decl is None:
        return
    reader.keys(decl, path, CALL_INPUT_KEYS)
    _description(reader, decl, path)
    _required(reader, decl, path)
    kind = decl.get("type")
    if kind is None:
        reader.error(decl, join(path, "type"), "a `workflow_call` input needs a `type`")
    else:
        text = reader.string(kind, join(path, "type"))
        if text is not None and text not in CALL_INPUT_TYPES:
            reader.error(
                kind,
                join(path, "type"),
                f"unknown input type '{text}'{did_you_mean(text, CALL_INPUT_TYPES)} "
                f"(a `workflow_call` input is one of {', '.join(CALL_INPUT_TYPES)})",
            )
    if (default := decl.get("default")) is not None:
        if isinstance(default, YScalar):  # GitHub reads a null default as ''
            reader.string(default, join(path, "default"), CTX_CALL_INPUT_DEFAULT)
        else:
            reader.error(
                default,
                join(path, "default"),
                f"expected a string, number or boolean, found {describe(default)}",
            )


def _call_secret(reader: Reader, node: YNode, path: str) -> None:
    if isinstance(node, YScalar) and node.value is None:
        return
    decl = reader.mapping(node, path, "nothing or a mapping with `description` and `required`")
    if decl is not None:
        reader.keys(decl, path, CALL_SECRET_KEYS)
        _description(reader, decl, path)
        _required(reader, decl, path)


def _call_output(reader: Reader, node: YNode, path: str) -> None:
    decl = reader.mapping(node, path, "a mapping with `value` and, optionally, `description`")
    if decl is None:
        return
    reader.keys(decl, path, CALL_OUTPUT_KEYS)
    _description(reader, decl, path)
    if (value := decl.get("value")) is None:
        reader.error(decl, join(path, "value"), "a `workflow_call` output needs a `value`")
    else:
        reader.string(value, join(path, "value"), CTX_CALL_OUTPUT)


def _description(reader: Reader, decl: YMap, path: str) -> None:
    if (node := decl.get("description")) is not None:
        reader.string(node, join(path, "description"))


def _required(reader: Reader, decl: YMap, path: str) -> None:
    node = decl.get("required")
    if node is not None and not (isinstance(node, YScalar) and isinstance(node.value, bool)):
        found = describe(node)
        reader.error(node, join(path, "required"), f"expected true or false, found {found}")


def _is_template(text: str) -> bool:
    return "${{" in text
