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


def children(node: Node) -> tuple[Node, ...]:
    """The direct sub-expressions of ``node``."""
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
        stack.extend(reversed(children(current)))


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
        # GitHub's spelling when it is exact, else repr(), which always round-trips.
        short = format_number(number)
        return short if not math.isfinite(number) or float(short) == number else repr(number)
    return "'" + str(value).replace("'", "''") + "'"


def unparse(node: Node) -> str:
    """Expression text that parses back to an equivalent tree, with parentheses only
    where precedence needs them (so a long flat chain stays flat and within the
    parser's depth limit)."""
    # Post-order with an explicit stack: (node, visited) pairs, results on `out`.
    out: list[tuple[str, int]] = []
    stack: list[tuple[Node, bool]] = [(node, False)]
    while stack:
        current, visited = stack.pop()
        kids = children(current)
        if not visited and kids:
            stack.append((current, True))
            stack.extend((child, False) for child in reversed(kids))
            continue
        parts = [out.pop() for _ in kids][::-1] if kids else []
        out.append(_render(current, parts))
    return out[0][0]


_POSTFIX_OK = (NamedValue, Call, Property, Index, Star)
_ATOM = 6
_LEVEL = {"||": 1, "&&": 2, "==": 3, "!=": 3, "<": 4, "<=": 4, ">": 4, ">=": 4}


def _wrap(part: tuple[str, int], minimum: int) -> str:
    text, level = part
    return text if level >= minimum else f"({text})"


def _render(node: Node, parts: list[tuple[str, int]]) -> tuple[str, int]:
    """The text of ``node`` and its precedence level (higher binds tighter)."""
    if isinstance(node, Literal):
        return _literal(node.value), _ATOM
    if isinstance(node, NamedValue):
        # Keywords are case-sensitive and names are not: 'TRUE' is the context 'true'.
        name = node.name.upper() if node.name in ("true", "false", "null") else node.name
        return name, _ATOM
    if isinstance(node, Property | Index | Star):
        # Member access may follow a name, a call or another access without parentheses.
        obj = parts[0][0] if isinstance(node.obj, _POSTFIX_OK) else f"({parts[0][0]})"
        if isinstance(node, Star):
            return f"{obj}.*", _ATOM
        if isinstance(node, Index):
            return f"{obj}[{parts[1][0]}]", _ATOM
        if is_identifier(node.name):
            return f"{obj}.{node.name}", _ATOM
        return f"{obj}[{_literal(node.name)}]", _ATOM
    if isinstance(node, Not):
        return "!" + _wrap(parts[0], 5), 5
    if isinstance(node, Compare | Logical):
        level = _LEVEL[node.op]
        # Left-associative: the right operand needs parentheses at the same level.
        return f"{_wrap(parts[0], level)} {node.op} {_wrap(parts[1], level + 1)}", level
    return f"{node.name}({', '.join(p[0] for p in parts)})", _ATOM
