"""The one error type of the expression language and the limits that guard it."""

from __future__ import annotations

from typing import Literal

ErrorKind = Literal["lexing", "parsing", "evaluation"]

# GitHub's own limits (actions/runner, actions/languageservices): an expression longer
# than this or nested deeper than this is rejected, so hostile input costs little.
MAX_EXPRESSION_LENGTH = 21_000
MAX_DEPTH = 50
# Bytes of intermediate results alive at once while evaluating (GitHub: 1 MiB, strings
# counted as UTF-16: 26 bytes of overhead + 2 per character).
MAX_MEMORY_BYTES = 1_048_576

# Expressions quoted in messages are cut here so a huge input does not make a huge error.
_QUOTE_LIMIT = 300


class ExpressionError(Exception):
    """A lexing, parsing or evaluation error in an expression.

    ``column`` is the 1-based position inside the expression text where the problem is
    (for template errors: inside the template text); ``kind`` is ``'lexing'``,
    ``'parsing'`` or ``'evaluation'``. ``reason`` is the message without the location.
    """

    def __init__(self, reason: str, *, column: int, kind: ErrorKind, expression: str) -> None:
        self.reason = reason
        self.column = column
        self.kind: ErrorKind = kind
        self.expression = expression
        super().__init__(
            f"{reason}. Located at position {column} within expression: {quote(expression)}"
        )


def quote(expression: str) -> str:
    """The expression as shown in messages: shortened when very long."""
    if len(expression) <= _QUOTE_LIMIT:
        return expression
    return expression[:_QUOTE_LIMIT] + f"… ({len(expression)} characters)"
