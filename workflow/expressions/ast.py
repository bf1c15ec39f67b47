"""Syntax tree of a GitHub Actions expression.

Every node records ``column``: the 1-based position in the expression text where it
starts, used by error messages.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Literal:
    value: Any  # None, bool, float or str
    column: int


@dataclass(frozen=True)
class NamedValue:
    """A context name such as ``github`` or ``steps`` (stored lowercase)."""

    name: str
    column: int


@dataclass(frozen=True)
class Property:
    """``obj.name`` or ``obj['name']`` with a literal string."""

    obj: Node
    name: str
    column: int


@dataclass(frozen=True)
class Index:
    """``obj[index]`` with a computed index."""

    obj: Node
    index: Node
    column: int


@dataclass(frozen=True)
class Star:
    """``obj.*`` or ``obj[*]``: an object filter."""

    obj: Node
    column: int


@dataclass(frozen=True)
class Not:
    operand: Node
    column: int


@dataclass(frozen=True)
class Compare:
    op: str  # one of == != < <= > >=
    left: Node
    right: Node
    column: int


@dataclass(frozen=True)
class Logical:
    op: str  # && or ||
    left: Node
    right: Node
    column: int


@dataclass(frozen=True)
class Call:
    name: str  # lowercase function name
    args: tuple[Node, ...]
    column: int


Node = Literal | NamedValue | Property | Index | Star | Not | Compare | Logical | Call
