"""The `case(pred1, val1, …, default)` function, with GitHub's semantics."""

from __future__ import annotations

from typing import Any

import pytest

from workflow import validate
from workflow.expressions import ExpressionError, evaluate

CONTEXTS: dict[str, Any] = {
    "github": {"ref": "refs/heads/dev", "event_name": "push"},
    "inputs": {"level": "2", "flag": True, "list": ["a", "b"]},
}


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        # The first true predicate wins, whatever follows it.
        ("case(true, 'one', true, 'two', 'other')", "one"),
        ("case(false, 'one', true, 'two', 'other')", "two"),
        ("case(false, 'one', false, 'two', 'other')", "other"),
        # Predicates are expressions over contexts.
        (
            "case(github.ref == 'refs/heads/main', 'prod', "
            "startsWith(github.ref, 'refs/heads/d'), 'dev', 'none')",
            "dev",
        ),
        ("case(inputs.flag, 'on', 'off')", "on"),
        # Values keep their types: numbers, booleans, null, arrays, objects.
        ("case(true, 7, 'x')", 7.0),
        ("case(false, 'x', 0)", 0.0),
        ("case(true, false, true)", False),
        ("case(true, null, 'x')", None),
        ("case(true, inputs.list, 'x')", ["a", "b"]),
        ("case(false, 'x', fromJSON('{\"k\": [1]}'))", {"k": [1.0]}),
        ("case(true, '', 'x')", ""),
        # The name is case-insensitive like every function name.
        ("CASE(1 < 2, 'less', 'more')", "less"),
        # Nested: a case is a value like any other.
        ("case(false, 1, case(true, 2, 3))", 2.0),
    ],
)
def test_case_values(expression: str, expected: Any) -> None:
    assert evaluate(expression, CONTEXTS) == expected
    assert type(evaluate(expression, CONTEXTS)) is type(expected)


@pytest.mark.parametrize(
    ("expression", "got"),
    [
        ("case('yes', 1, 2)", "string"),
        ("case(1, 1, 2)", "number"),
        ("case(null, 1, 2)", "null"),
        ("case(inputs.list, 1, 2)", "array"),
        ("case(github, 1, 2)", "object"),
        # A truthy string is still not a boolean; nor is `inputs.level == 2`'s operand.
        ("case(false, 1, inputs.level, 2, 3)", "string"),
    ],
)
def test_a_predicate_that_is_not_a_boolean_is_an_evaluation_error(
    expression: str, got: str
) -> None:
    with pytest.raises(ExpressionError) as raised:
        evaluate(expression, CONTEXTS)
    assert raised.value.kind == "evaluation"
    assert "case predicate must evaluate to a boolean value" in str(raised.value)
    assert f"got {got}" in str(raised.value)


def test_the_error_points_at_the_predicate() -> None:
    with pytest.raises(ExpressionError) as raised:
        evaluate("case(false, 1, 'x', 2, 3)", {})
    assert raised.value.column == len("case(false, 1, ") + 1


def test_case_is_lazy_like_githubs_runner() -> None:
    # Neither the values of other branches nor predicates after the first true one
    # are evaluated: their errors cannot happen.
    assert evaluate("case(true, 'ok', fromJSON(''), 'x', 'y')", {}) == "ok"
    assert evaluate("case(true, 'ok', 'not a boolean', 1, 2)", {}) == "ok"
    assert evaluate("case(false, fromJSON(''), 'default')", {}) == "default"


@pytest.mark.parametrize("arguments", ["true, 1, false, 2", "true, 1, false, 2, true, 3"])
def test_an_even_number_of_arguments_is_a_parse_error(arguments: str) -> None:
    with pytest.raises(ExpressionError) as raised:
        evaluate(f"case({arguments})", {})
    assert raised.value.kind == "parsing"
    assert str(raised.value).startswith(
        "Even number of parameters supplied, requires an odd number of parameters: 'case'"
    )
    assert raised.value.column == 1


@pytest.mark.parametrize("arguments", ["", "true", "true, 1"])
def test_fewer_than_three_arguments_is_a_parse_error(arguments: str) -> None:
    with pytest.raises(ExpressionError, match="Too few parameters supplied: 'case'"):
        evaluate(f"case({arguments})", {})


def test_validate_accepts_case_and_refuses_an_even_count_at_its_position() -> None:
    good = (
        "on: push\njobs:\n  j:\n    runs-on: x\n    steps:\n"
        "      - run: echo ${{ case(github.ref == 'refs/heads/main', 'prod', 'dev') }}\n"
    )
    assert validate(good) == []
    bad = good.replace("'prod', 'dev'", "'prod', false, 'dev'")
    [error] = validate(bad)
    assert (error.line, error.column, error.path) == (6, 23, "jobs.j.steps[0].run")
    assert error.message.startswith("Even number of parameters supplied")
