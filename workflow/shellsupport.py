"""Which run-time expressions :mod:`workflow.shellcond` can compile, decided without values.

The compiler folds what is known when the job starts and compiles the rest into shell;
what it folds depends on the values (``inputs.x || steps.a.outputs.b`` never reads the
step when ``inputs.x`` is set), so this check looks at every branch: an expression it
accepts compiles whatever the values are. ``validate`` uses it to refuse, before a
build exists, what a job would otherwise refuse before its first step.

It mirrors ``Compiler._operand`` / ``Compiler._cond`` rule for rule; a change to what
the compiler accepts must be made in both (the property test in
``tests/unit/test_runtime_agreement.py`` holds them together).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from workflow.expressions import STATUS_FUNCTIONS, Node, unparse
from workflow.expressions.analysis import children
from workflow.expressions.ast import Call, Compare, Index, Logical, NamedValue, Not, Star
from workflow.expressions.ast import Property as Prop
from workflow.shellcond import is_env_ref, is_job_status, needs_runtime

_STRING_FUNCTIONS = frozenset({"contains", "startswith", "endswith"})
_SPELLING = {"startswith": "startsWith", "endswith": "endsWith", "tojson": "toJSON",
             "fromjson": "fromJSON"}
# The compiler recurses once or twice per level of a run-time expression; deeper trees
# (thousands of `a && b && …`) are refused here rather than overflow the Python stack.
MAX_RUNTIME_DEPTH = 100

RUNTIME_VALUES = "run-time values (steps, job.status, status functions)"


@dataclass(frozen=True)
class Problem:
    node: Node  # where in the expression (its column)
    message: str


def runtime_problem(
    node: Node, step_ids: Collection[str], *, runtime_env: bool, condition: bool
) -> Problem | None:
    """Why the compiler would refuse ``node`` (an ``if:``-style condition when
    ``condition``, else a value interpolated into text), or None when it compiles
    whatever the values. ``step_ids`` are the job's step ids (any case);
    ``runtime_env``: whether ``env.<name>`` is read at run time (every step after the
    first, and job outputs)."""
    if not needs_runtime(node, runtime_env):
        return None
    if _depth(node) > MAX_RUNTIME_DEPTH:
        return Problem(
            node,
            f"an expression over {RUNTIME_VALUES} nested more than {MAX_RUNTIME_DEPTH} "
            "levels deep is not supported yet at run time",
        )
    ids = {i.lower() for i in step_ids}
    # (node, as a condition?) pairs; a stack, not recursion, for long `&&` chains.
    stack = [(node, condition)]
    while stack:
        current, as_cond = stack.pop()
        if not needs_runtime(current, runtime_env):
            continue  # folded when the script is rendered
        found = _check(current, as_cond, runtime_env, ids, stack)
        if found is not None:
            return found
    return None


def _check(
    node: Node, as_cond: bool, runtime_env: bool, ids: set[str], stack: list[tuple[Node, bool]]
) -> Problem | None:
    if isinstance(node, Not):
        stack.append((node.operand, True))
        return None
    if isinstance(node, Logical):
        stack += [(node.right, as_cond), (node.left, as_cond)]
        return None
    if isinstance(node, Compare):
        stack += [(node.right, False), (node.left, False)]
        return None
    if isinstance(node, Call) and node.name in _STRING_FUNCTIONS:
        stack += [(arg, False) for arg in reversed(node.args)]
        return None
    if isinstance(node, Call) and node.name in STATUS_FUNCTIONS:
        return None
    if is_job_status(node):
        return None
    if runtime_env and is_env_ref(node):
        if isinstance(node, Index) and needs_runtime(node.index):
            return _unsupported(node.index)
        return None
    if not needs_runtime(node):
        return None  # env inside a form the shell cannot compute: its rendered value
    return _steps_ref(node, ids)


def _steps_ref(node: Node, ids: set[str]) -> Problem | None:
    path: list[str | None] = []
    current = node
    while isinstance(current, Prop | Index):
        if isinstance(current, Prop):
            path.append(current.name)
        elif needs_runtime(current.index):
            return _unsupported(current.index)
        else:
            path.append(None)  # a key computed when the script is rendered
        current = current.obj
    if not (isinstance(current, NamedValue) and current.name == "steps"):
        return _unsupported(current if isinstance(current, Call | Star) else node)
    path.reverse()
    if not path or len(path) > 3:
        return _unsupported(node)
    step_id, field = path[0], path[1] if len(path) > 1 else ""
    if step_id is None or field is None:
        return _unsupported(node)  # which step or which field depends on the values
    if step_id.lower() not in ids:
        known = ", ".join(sorted(ids)) or "none"
        return Problem(
            node, f"step id '{step_id}' is not a step of this job (step ids: {known})"
        )
    if len(path) == 2 and field.lower() in ("outcome", "conclusion"):
        return None
    if len(path) == 3 and field.lower() == "outputs":
        return None
    return _unsupported(node)


def _unsupported(node: Node) -> Problem:
    if isinstance(node, Call):
        name = _SPELLING.get(node.name, node.name)
        return Problem(
            node,
            f"{name}() over {RUNTIME_VALUES} is not supported yet at run time; they can "
            "only be compared, combined with ! && || or passed to contains(), "
            "startsWith(), endsWith()",
        )
    return Problem(
        node,
        f"'{_short(unparse(node))}' is not supported yet at run time; read "
        "steps.<id>.outputs.<name>, steps.<id>.outcome or steps.<id>.conclusion",
    )


def _short(text: str) -> str:
    return text if len(text) <= 60 else text[:60] + "…"


def _depth(node: Node) -> int:
    deepest = 0
    stack = [(node, 1)]
    while stack:
        current, depth = stack.pop()
        deepest = max(deepest, depth)
        if deepest > MAX_RUNTIME_DEPTH:
            break
        stack += [(child, depth + 1) for child in children(current)]
    return deepest
