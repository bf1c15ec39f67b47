"""Evaluates a parsed expression against contexts.

Chains of binary operators (``a == b == c``, ``a || b || c``) are walked with a loop
down their left spine, so a long flat chain never deepens the Python stack; every
other kind of nesting is bounded by the parser's depth limit.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from workflow.expressions.ast import (
    Call,
    Compare,
    Index,
    Literal,
    Logical,
    NamedValue,
    Node,
    Not,
    Property,
    Star,
)
from workflow.expressions.coercion import (
    FilteredArray,
    Kind,
    ValueTypeError,
    compare,
    fold_case,
    is_primitive,
    kind_of,
    to_bool,
    to_number,
    to_string,
)
from workflow.expressions.errors import ExpressionError
from workflow.expressions.functions import BUILTINS, STATUS_FUNCTIONS, Budget, FunctionFailed

_STAR = object()


def lookup_key(obj: Mapping[str, Any], key: str) -> tuple[bool, Any]:
    """Case-insensitive key lookup: an exact match first, then any key equal ignoring
    case. Returns ``(found, value)``."""
    if key in obj:
        return True, obj[key]
    folded = fold_case(key)
    for candidate, value in obj.items():
        if isinstance(candidate, str) and fold_case(candidate) == folded:
            return True, value
    return False, None


def _array_index(key: Any) -> int | None:
    number = to_number(key)
    if math.isfinite(number) and number >= 0:
        return int(number)
    return None


def access(obj: Any, key: Any) -> Any:
    """``obj[key]`` with GitHub's rules; ``key`` may be the ``*`` filter marker.

    Arrays take a number (strings, booleans, null coerced; out of range is null),
    objects take a string (numbers and others coerced to their string), anything else
    gives null — or an empty filter for ``*``. On a filtered array the access is
    applied to every item and the hits are collected.
    """
    star = key is _STAR
    name = None if star or not is_primitive(key) else to_string(key)
    index = None if star else _array_index(key)
    if isinstance(obj, FilteredArray):
        hits = FilteredArray()
        for item in obj:
            kind = kind_of(item)
            if kind is Kind.OBJECT:
                if star:
                    hits.extend(item.values())
                elif name is not None:
                    found, value = lookup_key(item, name)
                    if found:
                        hits.append(value)
            elif kind is Kind.ARRAY:
                if star:
                    hits.extend(item)
                elif index is not None and index < len(item):
                    hits.append(item[index])
        return hits
    kind = kind_of(obj)
    if kind is Kind.ARRAY:
        if star:
            return FilteredArray(obj)
        return obj[index] if index is not None and index < len(obj) else None
    if kind is Kind.OBJECT:
        if star:
            return FilteredArray(obj.values())
        return lookup_key(obj, name)[1] if name is not None else None
    return FilteredArray() if star else None


def plain(value: Any) -> Any:
    """The value as returned to callers: filters become lists, ints become floats."""
    if isinstance(value, FilteredArray):
        return list(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


class Evaluator:
    """Evaluates one node tree; ``expression`` is only used in error messages."""

    def __init__(
        self,
        expression: str,
        contexts: Mapping[str, Any],
        functions: Mapping[str, Callable[..., Any]] | None,
    ) -> None:
        self.expression = expression
        self.contexts = contexts
        self.functions = {str(k).lower(): v for k, v in (functions or {}).items()}
        self.budget = Budget()
        self.column = 1

    def error(self, reason: str) -> ExpressionError:
        return ExpressionError(
            reason, column=self.column, kind="evaluation", expression=self.expression
        )

    def run(self, node: Node) -> Any:
        try:
            return plain(self.eval(node))
        except (ValueTypeError, FunctionFailed) as exc:
            raise self.error(str(exc)) from None

    def eval(self, node: Node) -> Any:
        self.column = node.column
        if isinstance(node, Literal):
            return node.value
        if isinstance(node, NamedValue):
            found, value = lookup_key(self.contexts, node.name)
            if not found:
                raise self.error(f"Named-value '{node.name}' is not available here")
            return value
        if isinstance(node, Property):
            return access(self.eval(node.obj), node.name)
        if isinstance(node, Index):
            obj = self.eval(node.obj)
            return access(obj, self.eval(node.index))
        if isinstance(node, Star):
            return access(self.eval(node.obj), _STAR)
        if isinstance(node, Not):
            return not to_bool(self.eval(node.operand))
        if isinstance(node, Compare | Logical):
            return self.eval_chain(node)
        if isinstance(node, Call):
            return self.eval_call(node)
        raise TypeError(f"not an expression node: {node!r}")

    def eval_chain(self, node: Compare | Logical) -> Any:
        spine: list[Compare | Logical] = []
        current: Node = node
        while isinstance(current, Compare | Logical):
            spine.append(current)
            current = current.left
        value = self.eval(current)
        for parent in reversed(spine):
            if isinstance(parent, Logical):
                # && and || give back an operand, not a boolean.
                if to_bool(value) == (parent.op == "&&"):
                    value = self.eval(parent.right)
            else:
                right = self.eval(parent.right)
                self.column = parent.column
                value = compare(parent.op, value, right)
        return value

    def eval_call(self, node: Call) -> Any:
        if node.name == "case":
            return self.eval_case(node)
        mark = self.budget.used
        args = [self.eval(arg) for arg in node.args]
        self.column = node.column
        custom = self.functions.get(node.name)
        before = self.budget.used
        if custom is not None:
            try:
                result = custom(*args)
            except ExpressionError:
                raise
            except Exception as exc:
                # The caller's function failed: say where in the expression it was called.
                raise self.error(f"Function '{node.name}' failed: {exc}") from exc
        elif node.name in BUILTINS:
            result = BUILTINS[node.name](args, self.budget)
        elif node.name in STATUS_FUNCTIONS:
            raise self.error(f"Function '{node.name}()' is not available here")
        else:
            raise self.error(f"Function '{node.name}' is not available here")
        # The arguments are dropped now; only what the function built stays alive.
        self.budget.release_to(mark + self.budget.used - before)
        return result

    def eval_case(self, node: Call) -> Any:
        """``case(pred1, val1, …, default)``: lazy like GitHub's runner, so only the
        predicates up to the first true one and the chosen value are evaluated."""
        args = node.args
        for i in range(0, len(args) - 1, 2):
            predicate = self.eval(args[i])
            if not isinstance(predicate, bool):
                self.column = args[i].column
                raise self.error(
                    "case predicate must evaluate to a boolean value, "
                    f"got {kind_of(plain(predicate)).value.lower()}"
                )
            if predicate:
                return self.eval(args[i + 1])
        return self.eval(args[-1])
