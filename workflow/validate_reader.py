"""What every part of validation shares: the checked definitions and the ``Reader``.

The readers of each part (``validate_job``, ``validate_step``, ``validate_inputs``,
``validate_ignored``) build on this module and ``validate`` on them, so the imports run
one way and none has to hide inside a function.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from workflow.diagnostics import Errors
from workflow.model import InputSpec, JobSpec, Template
from workflow.schema import (
    DEFAULTS_KEYS,
    DEFAULTS_RUN_KEYS,
    ENV_NAME_RE,
    ID_RE,
    MAX_ID_LENGTH,
    SHELLS,
)
from workflow.suggest import did_you_mean
from workflow.validate_expr import ExprChecker, condition_text
from workflow.yamlsafe import YMap, YNode, YScalar, YSeq

T = TypeVar("T")


@dataclass
class JobDef:
    """One `jobs.<id>` entry, checked; templates still as written."""

    job_id: str
    node: YMap
    proto: JobSpec  # key == job_id; needs holds the ids; expanded by the planner
    needs_nodes: dict[str, YScalar] = field(default_factory=dict)
    matrix: YNode | None = None
    fail_fast: bool | str = True  # str: an expression evaluated at plan time
    max_parallel: int | str | None = None
    timeout: float | str = 360.0  # str: a template evaluated at plan time
    timeout_node: YNode | None = None
    step_timeouts: dict[int, tuple[str, YNode]] = field(default_factory=dict)  # templates


@dataclass
class WorkflowDef:
    name: str = ""
    env: dict[str, Template] = field(default_factory=dict)
    inputs: dict[str, InputSpec] = field(default_factory=dict)
    defaults_shell: str | None = None
    defaults_working_directory: str | None = None
    jobs: dict[str, JobDef] = field(default_factory=dict)
    jobs_node: YMap | None = None


def as_text(value: Any) -> str:
    """A scalar as GitHub turns it into a string (``true``, ``3.1``, ``''`` for null)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isfinite(value) and value == int(value):
            return str(int(value))
        return repr(value)
    return str(value)


def join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


class Reader:
    """Typed access to located nodes; each wrong shape becomes an error."""

    def __init__(self, errors: Errors) -> None:
        self.errors = errors
        self.exprs = ExprChecker(errors)

    def error(self, at: YNode | None, path: str, message: str) -> None:
        self.errors.add(at, path, message)

    def mapping(self, node: YNode, path: str, what: str = "a mapping") -> YMap | None:
        if isinstance(node, YMap):
            return node
        self.error(node, path, f"expected {what}, found {describe(node)}")
        return None

    def keys(
        self,
        node: YMap,
        path: str,
        allowed: frozenset[str],
        ignored: frozenset[str] = frozenset(),
        rejected: dict[str, str] | None = None,
    ) -> None:
        """Report every key that is not allowed (rejected ones with their own message)."""
        rejected = rejected or {}
        for key, entry in node.entries.items():
            if key in allowed or key in ignored:
                continue
            where = join(path, key)
            if key in rejected:
                self.error(entry.key, where, rejected[key])
            else:
                hint = did_you_mean(key, sorted(allowed))
                self.error(entry.key, where, f"unknown key '{key}'{hint}")

    def string(
        self,
        node: YNode,
        path: str,
        contexts: frozenset[str] | None = None,
        *,
        max_length: int | None = None,
        unavailable: str | None = None,
    ) -> str | None:
        """A scalar as text; its templates are checked against ``contexts``."""
        if not isinstance(node, YScalar):
            self.error(node, path, f"expected a string, found {describe(node)}")
            return None
        text = as_text(node.value)
        if max_length is not None and len(text) > max_length:
            self.error(node, path, f"is {len(text)} characters long; the limit is {max_length}")
            return None
        if contexts is not None:
            self.exprs.template(node, path, contexts, unavailable=unavailable)
        elif isinstance(node.value, str) and "${{" in node.value:
            self.error(node, path, "expressions (`${{ }}`) are not allowed here")
            return None
        return text

    def env(self, node: YNode, path: str, contexts: frozenset[str]) -> dict[str, Template]:
        if isinstance(node, YScalar) and isinstance(node.value, str) and "${{" in node.value:
            self.error(
                node,
                path,
                "`env` must be a mapping of names to values; a whole "
                "`env` computed by an expression is not supported",
            )
            return {}
        mapping = self.mapping(node, path, "a mapping of variable names to values")
        result: dict[str, Template] = {}
        if mapping is None:
            return result
        for key, entry in mapping.entries.items():
            where = join(path, key)
            if not ENV_NAME_RE.match(key):
                self.error(entry.key, where, f"'{key}' is not a valid environment variable name")
                continue
            value = self.string(entry.value, where, contexts)
            if value is not None:
                result[key] = value
        return result

    def boolean_or_expr(
        self, node: YNode, path: str, contexts: frozenset[str]
    ) -> bool | str | None:
        """A boolean, or a ``${{ }}`` expression (returned unwrapped)."""
        if isinstance(node, YScalar) and isinstance(node.value, bool):
            return node.value
        if isinstance(node, YScalar) and isinstance(node.value, str):
            found = self.whole_template(node, path, contexts)
            if found is not None:
                return found
        self.error(
            node, path, f"expected true, false or a `${{{{ }}}}` expression, found {describe(node)}"
        )
        return None

    def number_or_expr(
        self,
        node: YNode,
        path: str,
        contexts: frozenset[str],
        convert: Callable[[Any], T],
        maximum: float = math.inf,
    ) -> T | str | None:
        """A positive number, or a ``${{ }}`` template (returned as written)."""
        if (
            isinstance(node, YScalar)
            and isinstance(node.value, int | float)
            and not isinstance(node.value, bool)
        ):
            if not (node.value > 0 and math.isfinite(node.value)):
                self.error(node, path, f"must be a positive number, not {node.value}")
            elif node.value > maximum:
                self.error(node, path, f"{node.text} is too large; the limit is {maximum:,}")
            else:
                return convert(node.value)
            return None
        if (
            isinstance(node, YScalar)
            and isinstance(node.value, str)
            and self.whole_template(node, path, contexts) is not None
        ):
            return node.value
        self.error(
            node,
            path,
            f"expected a positive number or a `${{{{ }}}}` expression, found {describe(node)}",
        )
        return None

    def whole_template(self, node: YScalar, path: str, contexts: frozenset[str]) -> str | None:
        """The inner expression of a value that is exactly one ``${{ }}``."""
        value = node.value
        if not isinstance(value, str) or not value.strip().startswith("${{"):
            return None
        found = condition_text(value)
        if found is None:
            return None
        expr, offset = found
        if self.exprs.expression(expr, node, offset, path, contexts, status=False):
            return expr.strip()
        return expr.strip()  # the error is reported; the shape was right

    def identifier(
        self, key: str, at: YNode, path: str, what: str, *, reserved: bool = False
    ) -> bool:
        """Whether ``key`` is a valid id; ``reserved``: ids starting with `__` are GitHub's
        own (job and step ids)."""
        if len(key) > MAX_ID_LENGTH:
            self.error(
                at,
                path,
                f"{what} '{key[:40]}…' is {len(key)} characters long; the limit is {MAX_ID_LENGTH}",
            )
            return False
        if not ID_RE.match(key):
            self.error(
                at,
                path,
                f"{what} '{key}' is invalid: it must start with a letter or "
                "'_' and contain only letters, digits, '-' and '_'",
            )
            return False
        if reserved and key.startswith("__"):
            self.error(at, path, f"{what} '{key}' is invalid: ids starting with '__' are reserved")
            return False
        return True

    def shell(self, node: YNode, path: str, contexts: frozenset[str] | None = None) -> str | None:
        """A shell name or command; with ``contexts`` (a job's `defaults.run`) it may be
        a template, evaluated when the job's steps are prepared."""
        value = self.string(node, path, contexts)
        if value is None:
            return None
        if value in SHELLS or "{0}" in value or "${{" in value:
            return value
        self.error(
            node,
            path,
            f"shell '{value}' is not supported: use one of "
            f"{', '.join(sorted(SHELLS))}, or a command with '{{0}}' for the script path",
        )
        return None


def describe(node: YNode) -> str:
    if isinstance(node, YMap):
        return "a mapping"
    if isinstance(node, YSeq):
        return "a list"
    assert isinstance(node, YScalar)
    if node.value is None:
        return "nothing (null)"
    if isinstance(node.value, bool):
        return f"the boolean {as_text(node.value)}"
    if isinstance(node.value, int | float):
        return f"the number {as_text(node.value)}"
    shown = node.value if len(node.value) <= 40 else node.value[:40] + "…"
    return f"the string '{shown}'"


def read_defaults(
    reader: Reader, node: YNode, path: str, contexts: frozenset[str] | None
) -> tuple[str | None, str | None]:
    mapping = reader.mapping(node, path)
    if mapping is None:
        return None, None
    reader.keys(mapping, path, DEFAULTS_KEYS)
    run = mapping.get("run")
    if run is None:
        return None, None
    run_path = join(path, "run")
    run_map = reader.mapping(run, run_path)
    if run_map is None:
        return None, None
    reader.keys(run_map, run_path, DEFAULTS_RUN_KEYS)
    shell = wd = None
    if (node_shell := run_map.get("shell")) is not None:
        shell = reader.shell(node_shell, join(run_path, "shell"), contexts)
    if (node_wd := run_map.get("working-directory")) is not None:
        wd = reader.string(node_wd, join(run_path, "working-directory"), contexts)
    return shell, wd
