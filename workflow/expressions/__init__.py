"""The GitHub Actions expression language (``${{ … }}``) with GitHub's semantics.

Values are plain Python data: ``None``, ``bool``, ``float`` (``int`` accepted in
contexts), ``str``, lists and mappings. Names of contexts, object keys and functions
are case-insensitive. Limits follow GitHub: 21,000 characters per expression, nesting
depth 50, 1 MiB of intermediate results.

Typical use::

    node = parse("success() && github.ref == 'refs/heads/main'",
                 names={"github"}, functions=STATUS_FUNCTIONS)
    if "always" in called_functions(node): ...
    evaluate("github.ref", {"github": {"ref": "refs/heads/main"}})
    interpolate("echo ${{ matrix.os }}", {"matrix": {"os": "linux"}})
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from typing import Any

from workflow.expressions.analysis import called_functions, named_values, unparse
from workflow.expressions.ast import Node
from workflow.expressions.coercion import to_bool, to_string
from workflow.expressions.errors import (
    MAX_DEPTH,
    MAX_EXPRESSION_LENGTH,
    MAX_MEMORY_BYTES,
    ExpressionError,
)
from workflow.expressions.evaluator import Evaluator
from workflow.expressions.functions import BUILTIN_ARITY, STATUS_FUNCTIONS
from workflow.expressions.parser import parse_expression
from workflow.expressions.template import (
    evaluate_template_with,
    evaluator_for,
    find_templates,
    interpolate_with,
    is_template,
)

__all__ = [
    "BUILTIN_FUNCTIONS",
    "MAX_DEPTH",
    "MAX_EXPRESSION_LENGTH",
    "MAX_MEMORY_BYTES",
    "STATUS_FUNCTIONS",
    "ExpressionError",
    "Functions",
    "Node",
    "called_functions",
    "evaluate",
    "evaluate_node",
    "evaluate_template",
    "find_templates",
    "interpolate",
    "is_template",
    "named_values",
    "parse",
    "to_bool",
    "to_string",
    "unparse",
]

Functions = Mapping[str, Callable[..., Any]]
"""Caller-supplied functions by lowercase name; called with the evaluated arguments."""

BUILTIN_FUNCTIONS = frozenset(BUILTIN_ARITY)
"""case, contains, startswith, endswith, format, join, tojson, fromjson (lowercase)."""


def parse(
    expression: str,
    names: Collection[str] | None = None,
    functions: Collection[str] | None = None,
) -> Node:
    """Parses an expression (the text inside ``${{ }}``) into a syntax tree.

    ``names`` are the context names allowed (case-insensitive); any other name is a
    parsing error ``Unrecognized named-value: 'x'``. ``None`` allows every name.
    ``functions`` are function names allowed besides the built-ins (for example
    :data:`STATUS_FUNCTIONS` in an ``if:``); an unknown function, or a wrong number of
    arguments to a built-in or a status function, is a parsing error. An empty
    expression parses to the literal ``null``.

    Raises :class:`ExpressionError` (kind ``lexing`` or ``parsing``) and nothing else.
    """
    return parse_expression(expression, names, functions)


def evaluate_node(
    node: Node,
    contexts: Mapping[str, Any],
    *,
    functions: Functions | None = None,
    expression: str | None = None,
) -> Any:
    """Evaluates a parsed tree. Named values are looked up in ``contexts``
    (case-insensitively); ``functions`` supply extra functions such as ``success``.
    Calling a status function that was not supplied is an evaluation error saying it
    is not available here. ``expression`` is the source text for error messages
    (rebuilt from the tree when omitted).

    Returns ``None``, ``bool``, ``float``, ``str``, a list or a mapping. Values taken
    from contexts are returned as they are (nested numbers may be ``int``).
    """
    text = expression if expression is not None else unparse(node)
    return Evaluator(text, contexts, functions).run(node)


def evaluate(
    expression: str,
    contexts: Mapping[str, Any],
    *,
    functions: Functions | None = None,
) -> Any:
    """Parses and evaluates ``expression``; the keys of ``contexts`` are the allowed
    names, the built-ins, the keys of ``functions`` and the status functions are the
    allowed functions. See :func:`evaluate_node` for the result.

    Raises :class:`ExpressionError` on any lexing, parsing or evaluation error.
    """
    allowed = set(STATUS_FUNCTIONS)
    allowed.update(functions or ())
    node = parse(expression, names=list(contexts), functions=allowed)
    return evaluate_node(node, contexts, functions=functions, expression=expression)


def interpolate(
    text: str, contexts: Mapping[str, Any], *, functions: Functions | None = None
) -> str:
    """Replaces every ``${{ … }}`` in ``text`` with the string of its value
    (:func:`to_string`: null is empty, numbers as GitHub prints them)."""
    return interpolate_with(text, evaluator_for(contexts, functions, evaluate))


def evaluate_template(
    text: str, contexts: Mapping[str, Any], *, functions: Functions | None = None
) -> Any:
    """The raw value when ``text`` is exactly one ``${{ … }}`` (so ``${{ fromJSON(x) }}``
    can give an object), otherwise the interpolated string."""
    return evaluate_template_with(text, evaluator_for(contexts, functions, evaluate))
