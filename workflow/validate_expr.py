"""Load-time checks of `${{ }}` templates and `if:` conditions.

Each expression is parsed where it is written; errors carry the file position of the
offending character (the value's position plus the column inside the expression) and
name the contexts the location may use.
"""

from __future__ import annotations

from collections.abc import Iterator

from workflow.diagnostics import Errors, Position
from workflow.expressions import (
    BUILTIN_FUNCTIONS,
    MAX_EXPRESSION_LENGTH,
    ExpressionError,
    find_templates,
    parse,
)
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
from workflow.model import Expression
from workflow.schema import (
    ALL_CONTEXTS,
    FUNCTION_SPELLING,
    GENERAL_FUNCTIONS,
    STATUS_FUNCTIONS,
    UNSUPPORTED_CONTEXTS,
    UNSUPPORTED_FUNCTIONS,
)
from workflow.suggest import did_you_mean
from workflow.yamlsafe import YScalar

# Parsed with every function we know so that misuse gets our own, specific message.
_PARSE_FUNCTIONS = STATUS_FUNCTIONS | frozenset(UNSUPPORTED_FUNCTIONS)
# Every built-in of the expression language (``case`` included) is usable anywhere.
_GENERAL = GENERAL_FUNCTIONS | BUILTIN_FUNCTIONS
_SPELLING = {**FUNCTION_SPELLING, "case": "case"}
# GitHub's words for `${{ }}` with nothing inside (TemplateReader.ParseExpression).
EMPTY_EXPRESSION = "An expression was expected"


def walk(node: Node) -> Iterator[Node]:
    """Every node of an expression tree, parents first."""
    yield node
    if isinstance(node, Property | Star):
        yield from walk(node.obj)
    elif isinstance(node, Index):
        yield from walk(node.obj)
        yield from walk(node.index)
    elif isinstance(node, Not):
        yield from walk(node.operand)
    elif isinstance(node, Compare | Logical):
        yield from walk(node.left)
        yield from walk(node.right)
    elif isinstance(node, Call):
        for arg in node.args:
            yield from walk(arg)
    else:
        assert isinstance(node, Literal | NamedValue)


def condition_text(value: str) -> tuple[str, int] | None:
    """The expression of an `if:` value and its offset in the value.

    A value that is exactly one ``${{ }}`` template is unwrapped; a value without one is
    the expression itself; None when templates are mixed with text.
    """
    stripped = value.strip()
    lead = len(value) - len(value.lstrip())
    if "${{" not in stripped:
        return value, 0
    try:
        spans = find_templates(stripped)
    except ExpressionError:
        return None
    if len(spans) == 1 and spans[0][0] == 0 and spans[0][1] == len(stripped):
        return spans[0][2], lead + inner_offset(stripped, spans[0][0], spans[0][1])
    return None


def templated_length(text: str, spans: list[tuple[int, int, str]]) -> int:
    """The length of the one expression GitHub makes of a templated value, in UTF-16
    code units as .NET counts them: the value itself when it is one whole ``${{ }}``,
    else ``format('<text, quotes and braces doubled, {N} per template>', <exprs>)``."""
    if len(spans) == 1 and spans[0][0] == 0 and spans[0][1] == len(text):
        return _utf16(spans[0][2])
    if not spans:
        return 0
    literal = []
    length = len("format('')")
    last = 0
    for index, (start, end, inner) in enumerate(spans):
        literal.append(text[last:start])
        length += len(f"{{{index}}}") + len(", ") + _utf16(inner)
        last = end
    literal.append(text[last:])
    joined = "".join(literal)
    doubled = joined.count("'") + joined.count("{") + joined.count("}")
    return length + _utf16(joined) + doubled


def _utf16(text: str) -> int:
    return len(text) + sum(1 for char in text if ord(char) > 0xFFFF)


def inner_offset(text: str, start: int, end: int) -> int:
    """Where the (stripped) expression of the template ``text[start:end]`` begins."""
    raw = text[start + 3 : end - 2]
    return start + 3 + len(raw) - len(raw.lstrip())


class ExprChecker:
    """Checks the expressions of one workflow, adding what is wrong to ``errors``."""

    def __init__(self, errors: Errors) -> None:
        self.errors = errors

    def template(
        self,
        scalar: YScalar,
        path: str,
        contexts: frozenset[str],
        *,
        unavailable: str | None = None,
    ) -> None:
        """Check every ``${{ }}`` of a string value."""
        if not isinstance(scalar.value, str) or "${{" not in scalar.value:
            return
        text = scalar.value
        try:
            spans = find_templates(text)
        except ExpressionError as exc:
            self._error(scalar, max(exc.column - 1, 0), path, exc.reason)
            return
        for start, end, inner in spans:
            if not inner:
                self._error(scalar, start, path, EMPTY_EXPRESSION)
                continue
            self.expression(
                inner,
                scalar,
                inner_offset(text, start, end),
                path,
                contexts,
                status=False,
                unavailable=unavailable,
            )
        length = templated_length(text, spans)
        if length > MAX_EXPRESSION_LENGTH:
            self._error(
                scalar,
                0,
                path,
                f"Exceeded max expression length {MAX_EXPRESSION_LENGTH}: GitHub evaluates "
                "a value with `${{ }}` as one expression, its text included "
                f"(here {length:,} characters)",
            )

    def condition(self, scalar: YScalar, path: str, contexts: frozenset[str]) -> Expression | None:
        """Check an `if:` value; returns the expression (unwrapped), None if invalid."""
        value = scalar.value
        if isinstance(value, bool):
            return "true" if value else "false"
        if value is None or isinstance(value, int | float):
            return str(value).lower() if value is not None else "true"
        found = condition_text(value)
        if found is None:
            self._error(
                scalar,
                0,
                path,
                "`if:` mixes `${{ }}` with other text, which GitHub treats as an always-true "
                "string: write the whole condition without `${{ }}`",
            )
            return None
        expr, offset = found
        if not expr.strip() and "${{" in value:
            self._error(scalar, value.find("${{"), path, EMPTY_EXPRESSION)
            return None
        if not expr.strip():
            self._error(scalar, 0, path, "`if:` is empty: write a condition or remove it")
            return None
        ok = self.expression(expr, scalar, offset, path, contexts, status=True)
        return expr.strip() if ok else None

    def expression(
        self,
        expr: str,
        scalar: YScalar,
        offset: int,
        path: str,
        contexts: frozenset[str],
        *,
        status: bool,
        unavailable: str | None = None,
    ) -> bool:
        """Check one expression that starts at ``offset`` of the scalar's value."""
        try:
            tree = parse(expr, functions=_PARSE_FUNCTIONS)
        except ExpressionError as exc:
            self._error(scalar, offset + max(exc.column - 1, 0), path, exc.reason)
            return False
        ok = True
        for node in walk(tree):
            problem = None
            if isinstance(node, NamedValue):
                problem = self._context_problem(node.name, path, contexts, unavailable)
            elif isinstance(node, Call):
                problem = self._function_problem(node.name, status)
            if problem:
                ok = False
                self._error(scalar, offset + node.column - 1, path, problem)
        return ok

    def _context_problem(
        self, name: str, path: str, contexts: frozenset[str], unavailable: str | None
    ) -> str | None:
        if name in contexts:
            return None
        if name in UNSUPPORTED_CONTEXTS:
            return UNSUPPORTED_CONTEXTS[name]
        if name in ALL_CONTEXTS:
            if unavailable:
                return unavailable
            where = ", ".join(sorted(contexts))
            return f"the `{name}` context is not available here (available: {where})"
        return f"unknown context '{name}'{did_you_mean(name, sorted(contexts))}"

    def _function_problem(self, name: str, status: bool) -> str | None:
        if name in _GENERAL or (status and name in STATUS_FUNCTIONS):
            return None
        if name in UNSUPPORTED_FUNCTIONS:
            return UNSUPPORTED_FUNCTIONS[name]
        if name in STATUS_FUNCTIONS:
            return f"`{name}()` can only be used in `if:` conditions"
        known = [_SPELLING.get(f, f) for f in sorted(_GENERAL)]
        return f"unknown function '{name}()'{did_you_mean(name, known)}"

    def _error(self, scalar: YScalar, offset: int, path: str, message: str) -> None:
        at: Position = self.errors.locate(scalar, offset)
        self.errors.add(at, path, message)
