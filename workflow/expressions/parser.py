"""Recursive-descent parser producing :mod:`workflow.expressions.ast` nodes.

Precedence, loosest first: ``||``, ``&&``, ``== !=``, ``< <= > >=``, ``!``, then
member access (``.name``, ``[index]``, ``.*``, ``[*]``) which only follows a context
name, a function call or a parenthesised group — as in GitHub.

Nesting is counted exactly as GitHub counts it (each sub-expression, each ``!``, each
member access in a chain and each ``&&``/``||`` chain is one level), so the limit of
:data:`MAX_DEPTH` accepts and rejects the same expressions GitHub does and keeps the
Python recursion bounded.
"""

from __future__ import annotations

from collections.abc import Collection

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
from workflow.expressions.errors import MAX_DEPTH, ExpressionError
from workflow.expressions.functions import BUILTIN_ARITY, STATUS_FUNCTIONS
from workflow.expressions.lexer import T, Token, tokenize

_EQUALITY = ("==", "!=")
_RELATIONAL = ("<", "<=", ">", ">=")


class _Parser:
    def __init__(
        self,
        expression: str,
        names: frozenset[str] | None,
        functions: frozenset[str],
    ) -> None:
        self.expression = expression
        self.tokens = tokenize(expression)
        self.pos = 0
        self.depth = 0
        self.names = names
        self.functions = functions

    # -- token helpers ------------------------------------------------------------

    def peek(self) -> Token:
        return self.tokens[self.pos]

    def previous(self) -> Token:
        return self.tokens[self.pos - 1]

    def at_end(self) -> bool:
        return self.peek().type is T.EOF

    def check(self, type_: T, *texts: str) -> bool:
        token = self.peek()
        return token.type is type_ and (not texts or token.text in texts)

    def match(self, type_: T, *texts: str) -> bool:
        if self.check(type_, *texts):
            self.pos += 1
            return True
        return False

    def error(self, reason: str, column: int) -> ExpressionError:
        return ExpressionError(reason, column=column, kind="parsing", expression=self.expression)

    def unexpected(self, token: Token) -> ExpressionError:
        if token.type is T.EOF:
            last = self.previous()
            return self.error(f"Unexpected end of expression: '{last.text}'", last.column)
        return self.error(f"Unexpected symbol: '{token.text}'", token.column)

    def expect(self, type_: T) -> None:
        if not self.match(type_):
            raise self.unexpected(self.peek())

    def deeper(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.error(f"Exceeded max expression depth {MAX_DEPTH}", self.peek().column)

    # -- grammar ------------------------------------------------------------------

    def parse(self) -> Node:
        if self.at_end():
            return Literal(None, 1)
        node = self.expression_()
        if not self.at_end():
            raise self.unexpected(self.peek())
        return node

    def expression_(self) -> Node:
        self.deeper()
        node = self.and_chain()
        if self.check(T.OR):
            self.deeper()  # a whole chain is one level, as in GitHub
            while self.match(T.OR):
                node = Logical("||", node, self.and_chain(), node.column)
            self.depth -= 1
        self.depth -= 1
        return node

    def and_chain(self) -> Node:
        node = self.equality()
        if self.check(T.AND):
            self.deeper()
            while self.match(T.AND):
                node = Logical("&&", node, self.equality(), node.column)
            self.depth -= 1
        return node

    def equality(self) -> Node:
        node = self.comparison()
        while self.match(T.COMPARE, *_EQUALITY):
            op = self.previous().text
            node = Compare(op, node, self.comparison(), node.column)
        return node

    def comparison(self) -> Node:
        node = self.unary()
        while self.match(T.COMPARE, *_RELATIONAL):
            op = self.previous().text
            node = Compare(op, node, self.unary(), node.column)
        return node

    def unary(self) -> Node:
        if self.match(T.NOT):
            column = self.previous().column
            self.deeper()
            operand = self.unary()
            self.depth -= 1
            return Not(operand, column)
        return self.postfix()

    def postfix(self) -> Node:
        node, accessible = self.call()
        if not accessible:
            return node
        added = 0
        while True:
            if self.match(T.LBRACKET):
                if self.match(T.STAR):
                    node = Star(node, node.column)
                else:
                    index = self.expression_()
                    if isinstance(index, Literal) and isinstance(index.value, str):
                        node = Property(node, index.value, node.column)
                    else:
                        node = Index(node, index, node.column)
                self.expect(T.RBRACKET)
                self.deeper()
                added += 1
            elif self.match(T.DOT):
                self.deeper()
                added += 1
                if self.match(T.IDENTIFIER):
                    node = Property(node, self.previous().text, node.column)
                elif self.match(T.STAR):
                    node = Star(node, node.column)
                else:
                    raise self.unexpected(self.peek())
            else:
                break
        self.depth -= added
        return node

    def call(self) -> tuple[Node, bool]:
        """A name, a function call or a primary; the flag says whether member access
        may follow."""
        if not self.check(T.IDENTIFIER):
            return self.primary()
        ident = self.peek()
        self.pos += 1
        name = ident.text.lower()
        if not self.match(T.LPAREN):
            if self.names is not None and name not in self.names:
                raise self.error(f"Unrecognized named-value: '{ident.text}'", ident.column)
            return NamedValue(name, ident.column), True
        args: list[Node] = []
        while not self.match(T.RPAREN):
            args.append(self.expression_())
            if not self.check(T.RPAREN):
                self.expect(T.COMMA)
        self.check_function(ident, len(args))
        return Call(name, tuple(args), ident.column), True

    def check_function(self, ident: Token, count: int) -> None:
        name = ident.text.lower()
        if name in BUILTIN_ARITY:
            low, high = BUILTIN_ARITY[name]
        elif name in self.functions:
            low, high = (0, 0) if name in STATUS_FUNCTIONS else (0, 255)
        else:
            raise self.error(f"Unrecognized function: '{ident.text}'", ident.column)
        if count < low:
            raise self.error(
                f"Too few parameters supplied: '{ident.text}' takes at least {low}, got {count}",
                ident.column,
            )
        if count > high:
            raise self.error(
                f"Too many parameters supplied: '{ident.text}' takes at most {high}, got {count}",
                ident.column,
            )
        if name == "case" and count % 2 == 0:
            # Pairs of predicate and value, then the default: GitHub refuses this parse.
            raise self.error(
                "Even number of parameters supplied, requires an odd number of parameters: "
                f"'{ident.text}' takes pairs of predicate and value, then a default, got {count}",
                ident.column,
            )

    def primary(self) -> tuple[Node, bool]:
        token = self.peek()
        if token.type in (T.TRUE, T.FALSE, T.NULL, T.NUMBER, T.STRING):
            self.pos += 1
            value = {T.TRUE: True, T.FALSE: False, T.NULL: None}.get(token.type, token.value)
            return Literal(value, token.column), False
        if self.match(T.LPAREN):
            node = self.expression_()
            if self.at_end():
                raise self.unexpected(self.peek())
            self.expect(T.RPAREN)
            return node, True
        raise self.unexpected(token)


def parse_expression(
    expression: str,
    names: Collection[str] | None = None,
    functions: Collection[str] | None = None,
) -> Node:
    """Parses ``expression``; see :func:`workflow.expressions.parse`."""
    allowed_names = None if names is None else frozenset(str(n).lower() for n in names)
    allowed_functions = frozenset(str(f).lower() for f in functions or ())
    return _Parser(expression, allowed_names, allowed_functions).parse()
