"""Questions about a parsed expression without evaluating it, and printing it back.

All walks use an explicit stack: a long flat ``a == b == c …`` chain is as deep as it
is long and must not exhaust the Python stack.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

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
from workflow.expressions.coercion import format_number
from workflow.expressions.lexer import is_identifier


def _children(node: Node) -> tuple[Node, ...]:
    if isinstance(node, Property | Star):
        return (node.obj,)
    if isinstance(node, Index):
        return (node.obj, node.index)
    if isinstance(node, Not):
        return (node.operand,)
    if isinstance(node, Compare | Logical):
        return (node.left, node.right)
    if isinstance(node, Call):
        return node.args
    return ()


def walk(node: Node) -> Iterator[Node]:
    """Every node of the tree, parents before children."""
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        stack.extend(reversed(_children(current)))


def named_values(node: Node) -> set[str]:
    """The lowercase context names the expression reads (``github``, ``steps`` …)."""
    return {n.name for n in walk(node) if isinstance(n, NamedValue)}


def called_functions(node: Node) -> set[str]:
    """The lowercase names of the functions the expression calls."""
    return {n.name for n in walk(node) if isinstance(n, Call)}


def _literal(value: object) -> str:
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int | float):
        number = float(value)
        if math.isnan(number):
            return "NaN"
        if number == 0 and math.copysign(1.0, number) < 0:
            return "-0"
        # repr() round-trips exactly; the lexer reads every spelling it produces.
        return repr(number) if math.isfinite(number) else format_number(number)
    return "'" + str(value).replace("'", "''") + "'"


def unparse(node: Node) -> str:
    """Expression text that parses back to an equivalent tree (fully parenthesised
    where precedence could matter)."""
    # Post-order with an explicit stack: (node, visited) pairs, results on `out`.
    out: list[str] = []
    stack: list[tuple[Node, bool]] = [(node, False)]
    while stack:
        current, visited = stack.pop()
        children = _children(current)
        if not visited and children:
            stack.append((current, True))
            stack.extend((child, False) for child in reversed(children))
            continue
        parts = [out.pop() for _ in children][::-1] if children else []
        out.append(_render(current, parts))
    return out[0]


_POSTFIX_OK = (NamedValue, Call, Property, Index, Star)


def _render(node: Node, parts: list[str]) -> str:
    if isinstance(node, Literal):
        return _literal(node.value)
    if isinstance(node, NamedValue):
        return node.name
    if isinstance(node, Property | Index | Star):
        # Member access may follow a name, a call or another access without parentheses.
        obj = parts[0] if isinstance(node.obj, _POSTFIX_OK) else f"({parts[0]})"
        if isinstance(node, Star):
            return f"{obj}.*"
        if isinstance(node, Index):
            return f"{obj}[{parts[1]}]"
        if is_identifier(node.name):
            return f"{obj}.{node.name}"
        return f"{obj}[{_literal(node.name)}]"
    if isinstance(node, Not):
        return f"!({parts[0]})"
    if isinstance(node, Compare | Logical):
        return f"({parts[0]}) {node.op} ({parts[1]})"
    return f"{node.name}({', '.join(parts)})"
