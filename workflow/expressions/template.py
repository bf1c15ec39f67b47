"""Strings with ``${{ … }}`` parts: finding, interpolating and evaluating them."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from workflow.expressions.coercion import to_string
from workflow.expressions.errors import ExpressionError

OPEN = "${{"
CLOSE = "}}"

Evaluate = Callable[[str], Any]


def is_template(text: str) -> bool:
    """Whether ``text`` contains a ``${{``."""
    return OPEN in text


def find_templates(text: str) -> list[tuple[int, int, str]]:
    """Each ``${{ … }}`` of ``text`` as ``(start, end, inner)``: ``text[start:end]``
    is the whole ``${{ … }}`` and ``inner`` the expression between the braces, without
    surrounding whitespace. Quoted strings are honoured, so ``${{ '}}' }}`` is one
    template. An unterminated ``${{`` (or quote) is a parsing :class:`ExpressionError`
    whose column is the position of that ``${{`` in ``text``."""
    found: list[tuple[int, int, str]] = []
    pos = text.find(OPEN)
    while pos >= 0:
        i = pos + len(OPEN)
        in_string = False
        end = -1
        while i < len(text):
            char = text[i]
            if char == "'":
                in_string = not in_string  # '' inside a string toggles twice: no change
            elif not in_string and text.startswith(CLOSE, i):
                end = i + len(CLOSE)
                break
            i += 1
        if end < 0:
            what = "an unterminated string" if in_string else "no closing '}}'"
            raise ExpressionError(
                f"Unterminated expression: '${{{{' has {what}",
                column=pos + 1,
                kind="parsing",
                expression=text,
            )
        found.append((pos, end, text[pos + len(OPEN) : end - len(CLOSE)].strip()))
        pos = text.find(OPEN, end)
    return found


def interpolate_with(text: str, evaluate: Evaluate) -> str:
    """``text`` with every template replaced by the string of its value."""
    pieces: list[str] = []
    last = 0
    for start, end, inner in find_templates(text):
        pieces.append(text[last:start])
        pieces.append(to_string(evaluate(inner)))
        last = end
    pieces.append(text[last:])
    return "".join(pieces)


def evaluate_template_with(text: str, evaluate: Evaluate) -> Any:
    """The raw value when ``text`` is exactly one template, else the interpolated
    string (``text`` itself when it has no template)."""
    templates = find_templates(text)
    if len(templates) == 1 and templates[0][0] == 0 and templates[0][1] == len(text):
        return evaluate(templates[0][2])
    return interpolate_with(text, evaluate) if templates else text


def evaluator_for(
    contexts: Mapping[str, Any],
    functions: Mapping[str, Callable[..., Any]] | None,
    evaluate: Callable[..., Any],
) -> Evaluate:
    """Binds contexts and functions to a one-argument evaluate."""

    def run(expression: str) -> Any:
        return evaluate(expression, contexts, functions=functions)

    return run
