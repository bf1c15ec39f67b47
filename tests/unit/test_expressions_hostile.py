"""Hostile input gets a clear ExpressionError, never a crash; plus property tests."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workflow.expressions import (
    MAX_DEPTH,
    MAX_EXPRESSION_LENGTH,
    ExpressionError,
    evaluate,
    evaluate_node,
    named_values,
    parse,
    unparse,
)
from workflow.expressions.ast import Literal


def error_of(expression: str, contexts: dict[str, Any] | None = None) -> ExpressionError:
    with pytest.raises(ExpressionError) as raised:
        evaluate(expression, contexts or {})
    return raised.value


def test_over_long_expression() -> None:
    error = error_of("'" + "a" * MAX_EXPRESSION_LENGTH + "'")
    assert error.kind == "lexing"
    assert f"Exceeded max expression length {MAX_EXPRESSION_LENGTH}" in str(error)
    assert len(str(error)) < 1000  # the message does not echo the whole input


@pytest.mark.parametrize(
    "expression",
    [
        "(" * 5000 + "1" + ")" * 5000,
        "!" * 10000 + "true",
        "a" + ".b" * 5000,
        "a" + "[0]" * 5000,
        "format(" * 2000 + "'x'" + ")" * 2000,
        "a[" * 5000 + "0" + "]" * 5000,
    ],
)
def test_deep_nesting_is_a_parsing_error(expression: str) -> None:
    error = error_of(expression, {"a": None})
    assert error.kind == "parsing"
    assert f"Exceeded max expression depth {MAX_DEPTH}" in str(error)


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        (" == ".join(["1"] * 4000), True),  # ((1 == 1) == 1) … is true all along
        (" || ".join(["0"] * 4000 + ["1"]), 1.0),
        (" && ".join(["1"] * 4000), 1.0),
        (" < ".join(["1"] * 4000), False),
    ],
)
def test_long_flat_chains_evaluate_without_recursion(expression: str, expected: Any) -> None:
    assert evaluate(expression, {}) == expected
    node = parse(expression)
    assert named_values(node) == set()
    assert evaluate(unparse(node), {}) == expected


def test_format_memory_bomb_is_stopped_before_it_is_built() -> None:
    inner = "format('{0}{0}{0}{0}{0}{0}{0}{0}{0}{0}', x)"
    expression = inner
    for _ in range(6):  # 10**6 copies of a 100-character string
        expression = f"format('{{0}}{{0}}{{0}}{{0}}{{0}}{{0}}{{0}}{{0}}{{0}}{{0}}', {expression})"
    error = error_of(expression, {"x": "y" * 100})
    assert error.kind == "evaluation"
    assert "maximum allowed memory size" in str(error)


def test_join_memory_bomb() -> None:
    error = error_of("join(items, sep)", {"items": [""] * 100_000, "sep": "s" * 1000})
    assert error.kind == "evaluation"
    assert "maximum allowed memory size" in str(error)


def test_memory_of_finished_calls_is_released() -> None:
    # Each toJSON is ~400 KB of UTF-16; three in sequence fit, three held at once do not.
    big = {"x": "z" * 200_000}
    held_briefly = " && ".join(["!startsWith(toJSON(big), 'x')"] * 3)
    assert evaluate(held_briefly, {"big": big}) is True
    error = error_of("format('{0}{1}{2}', toJSON(big), toJSON(big), toJSON(big))", {"big": big})
    assert "maximum allowed memory size" in str(error)


def test_deep_json_is_an_error_not_a_crash() -> None:
    error = error_of("fromJSON(x)", {"x": "[" * 100_000 + "]" * 100_000})
    assert error.kind == "evaluation"
    cyclic: dict[str, Any] = {}
    cyclic["self"] = cyclic
    assert error_of("toJSON(x)", {"x": cyclic}).kind == "evaluation"


# -- properties ---------------------------------------------------------------------------

literals = st.one_of(
    st.none(),
    st.booleans(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
)


@settings(max_examples=300, deadline=None)
@given(literals)
def test_literal_round_trips_through_its_text(value: Any) -> None:
    text = unparse(Literal(value, 1))
    result = evaluate(text, {})
    if isinstance(value, float) and math.isnan(value):
        assert isinstance(result, float) and math.isnan(result)
    else:
        assert result == value and type(result) is type(value)
        if isinstance(value, float):
            assert math.copysign(1, result) == math.copysign(1, value)


@settings(max_examples=300, deadline=None)
@given(st.floats(allow_nan=False), st.floats(allow_nan=False))
def test_number_comparisons_match_python(x: float, y: float) -> None:
    a, b = unparse(Literal(x, 1)), unparse(Literal(y, 1))
    assert evaluate(f"{a} < {b}", {}) is (x < y)
    assert evaluate(f"{a} == {b}", {}) is (x == y)
    assert evaluate(f"{a} >= {b}", {}) is (x >= y)


EXPRESSION_ALPHABET = st.sampled_from(
    [*"abcxyz019._-+*!=<>&|()[],' \n\t\"{}$@éı😊", "==", "&&", "||", "0x", "NaN", "null"]
)


@settings(max_examples=500, deadline=None)
@given(st.one_of(st.text(max_size=60), st.lists(EXPRESSION_ALPHABET, max_size=40).map("".join)))
def test_parse_raises_only_expression_errors(text: str) -> None:
    try:
        node = parse(text)
    except ExpressionError as error:
        assert error.kind in ("lexing", "parsing")
        assert 1 <= error.column <= len(text) + 1
        return
    # Whatever parses can be printed back and evaluated (or fail cleanly).
    reparsed = parse(unparse(node))
    contexts = {name: {"a": [1, "x"]} for name in named_values(node)}
    try:
        first = evaluate_node(node, contexts)
    except ExpressionError as error:
        assert error.kind == "evaluation"
        return
    second = evaluate_node(reparsed, contexts)
    assert repr(first) == repr(second)
