"""Splits an expression into tokens, with GitHub's lexical rules.

Quirks kept on purpose because GitHub has them: a sign or a leading ``.`` starts a
number (``-1``, ``.5``, ``-Infinity``), a ``.`` directly after a name, ``]``, ``)`` or
``*`` is member access, and an illegal run of characters is reported whole
(``'@abc'``, ``'=2'``) up to the next boundary character.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum, auto

from workflow.expressions.coercion import parse_number
from workflow.expressions.errors import MAX_EXPRESSION_LENGTH, ExpressionError


class T(Enum):
    LPAREN = auto()
    RPAREN = auto()
    LBRACKET = auto()
    RBRACKET = auto()
    COMMA = auto()
    DOT = auto()
    STAR = auto()
    NOT = auto()
    COMPARE = auto()  # == != < <= > >=
    AND = auto()
    OR = auto()
    NUMBER = auto()
    STRING = auto()
    IDENTIFIER = auto()
    TRUE = auto()
    FALSE = auto()
    NULL = auto()
    EOF = auto()


@dataclass(frozen=True)
class Token:
    type: T
    text: str  # the source text of the token
    column: int  # 1-based
    value: float | str | None = None  # numbers and strings


_BOUNDARY = frozenset("()[],.!><=&|")
_SINGLE = {"(": T.LPAREN, ")": T.RPAREN, "[": T.LBRACKET, "]": T.RBRACKET, ",": T.COMMA}
_KEYWORDS = {"true": T.TRUE, "false": T.FALSE, "null": T.NULL}
_KEYWORD_NUMBERS = {"NaN": math.nan, "Infinity": math.inf}
_DOT_IS_ACCESS_AFTER = (T.IDENTIFIER, T.RBRACKET, T.RPAREN, T.STAR)
_IDENT_START = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_")
_IDENT_REST = _IDENT_START | frozenset("0123456789-")


def _is_boundary(char: str) -> bool:
    return char in _BOUNDARY or char.isspace()


def is_identifier(text: str) -> bool:
    """Whether ``text`` is a legal name: a letter or ``_``, then letters, digits, ``_``, ``-``."""
    return bool(text) and text[0] in _IDENT_START and all(c in _IDENT_REST for c in text[1:])


class _Lexer:
    def __init__(self, expression: str) -> None:
        self.text = expression
        self.pos = 0
        self.tokens: list[Token] = []

    def error(self, start: int, symbol: str) -> ExpressionError:
        return ExpressionError(
            f"Unexpected symbol: '{symbol}'",
            column=start + 1,
            kind="lexing",
            expression=self.text,
        )

    def previous(self) -> T:
        return self.tokens[-1].type if self.tokens else T.EOF

    def add(self, type_: T, start: int, value: float | str | None = None) -> None:
        self.tokens.append(Token(type_, self.text[start : self.pos], start + 1, value))

    def match(self, char: str) -> bool:
        if self.text.startswith(char, self.pos):
            self.pos += 1
            return True
        return False

    def run(self) -> list[Token]:
        text = self.text
        while self.pos < len(text):
            start = self.pos
            char = text[self.pos]
            self.pos += 1
            if char.isspace():
                continue
            if char in _SINGLE:
                self.add(_SINGLE[char], start)
            elif char == ".":
                if self.previous() in _DOT_IS_ACCESS_AFTER:
                    self.add(T.DOT, start)
                else:
                    self.number(start)
            elif char in "+-" or "0" <= char <= "9":
                self.number(start)
            elif char == "*":
                self.add(T.STAR, start)
            elif char == "!":
                self.add(T.COMPARE if self.match("=") else T.NOT, start)
            elif char in "<>":
                self.match("=")
                self.add(T.COMPARE, start)
            elif char in "=&|":
                if not self.match(char):
                    self.identifier(start)  # reports the illegal run
                else:
                    self.add({"=": T.COMPARE, "&": T.AND, "|": T.OR}[char], start)
            elif char == "'":
                self.string(start)
            else:
                self.identifier(start)
        self.tokens.append(Token(T.EOF, "", len(text) + 1))
        return self.tokens

    def run_to_boundary(self, allow_dot: bool) -> str:
        text = self.text
        start = self.pos
        while self.pos < len(text):
            char = text[self.pos]
            if _is_boundary(char) and not (allow_dot and char == "."):
                break
            self.pos += 1
        return text[start : self.pos]

    def number(self, start: int) -> None:
        self.run_to_boundary(allow_dot=True)
        lexeme = self.text[start : self.pos]
        value = parse_number(lexeme)
        if math.isnan(value):
            raise self.error(start, lexeme)
        self.add(T.NUMBER, start, value)

    def string(self, start: int) -> None:
        text = self.text
        parts: list[str] = []
        while True:
            end = text.find("'", self.pos)
            if end < 0:
                raise self.error(start, text[start:])
            parts.append(text[self.pos : end])
            self.pos = end + 1
            if not self.match("'"):
                break
            parts.append("'")
        self.add(T.STRING, start, "".join(parts))

    def identifier(self, start: int) -> None:
        self.run_to_boundary(allow_dot=False)
        lexeme = self.text[start : self.pos]
        after_dot = self.previous() is T.DOT
        if not after_dot and lexeme in _KEYWORDS:
            self.add(_KEYWORDS[lexeme], start)
        elif not after_dot and lexeme in _KEYWORD_NUMBERS:
            self.add(T.NUMBER, start, _KEYWORD_NUMBERS[lexeme])
        elif is_identifier(lexeme):
            self.add(T.IDENTIFIER, start)
        else:
            raise self.error(start, lexeme)


def tokenize(expression: str) -> list[Token]:
    """The tokens of ``expression``, ending with an EOF token; raises a lexing
    :class:`ExpressionError` on an illegal symbol or an over-long expression."""
    if len(expression) > MAX_EXPRESSION_LENGTH:
        raise ExpressionError(
            f"Exceeded max expression length {MAX_EXPRESSION_LENGTH} "
            f"(the expression has {len(expression)} characters)",
            column=MAX_EXPRESSION_LENGTH + 1,
            kind="lexing",
            expression=expression,
        )
    return _Lexer(expression).run()
