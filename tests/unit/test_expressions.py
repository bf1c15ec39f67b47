"""Semantics of the expression language beyond GitHub's own conformance cases."""

from __future__ import annotations

import math
from itertools import product
from typing import Any

import pytest

from workflow.expressions import (
    STATUS_FUNCTIONS,
    ExpressionError,
    called_functions,
    evaluate,
    evaluate_node,
    named_values,
    parse,
    to_bool,
    to_string,
)

# Values with a way to write them in an expression: literals, or a context name.
VALUES: dict[str, Any] = {
    "null": None,
    "true": True,
    "false": False,
    "0": 0.0,
    "-0": -0.0,
    "1": 1.0,
    "2.5": 2.5,
    "NaN": math.nan,
    "Infinity": math.inf,
    "''": "",
    "'a'": "a",
    "'0'": "0",
    "'false'": "false",
    "arr": [],
    "obj": {},
}
CONTEXTS = {"arr": VALUES["arr"], "obj": VALUES["obj"]}
FALSY = {"null", "false", "0", "-0", "NaN", "''"}


def same(actual: Any, expected: Any) -> bool:
    if isinstance(expected, float) and math.isnan(expected):
        return isinstance(actual, float) and math.isnan(actual)
    return actual is expected or (
        type(actual) is type(expected)
        and not isinstance(actual, list | dict)
        and actual == expected
    )


# -- truthiness and logical operators ---------------------------------------------


@pytest.mark.parametrize("text", VALUES)
def test_truthiness(text: str) -> None:
    expected = text not in FALSY
    assert to_bool(VALUES[text]) is expected
    assert evaluate(f"!{text}", CONTEXTS) is (not expected)
    assert evaluate(f"!!{text}", CONTEXTS) is expected


@pytest.mark.parametrize(("a", "b"), list(product(VALUES, repeat=2)))
def test_and_or_return_an_operand(a: str, b: str) -> None:
    left, right = VALUES[a], VALUES[b]
    a_true = a not in FALSY
    assert same(evaluate(f"{a} && {b}", CONTEXTS), right if a_true else left)
    assert same(evaluate(f"{a} || {b}", CONTEXTS), left if a_true else right)


def test_short_circuit_skips_the_right_operand() -> None:
    calls: list[str] = []

    def boom() -> bool:
        calls.append("boom")
        return True

    functions = {"boom": boom}
    assert evaluate("false && boom()", {}, functions=functions) is False
    assert evaluate("true || boom()", {}, functions=functions) is True
    assert calls == []
    assert evaluate("true && boom()", {}, functions=functions) is True
    assert calls == ["boom"]


# -- comparisons --------------------------------------------------------------------


@pytest.mark.parametrize(("a", "b"), list(product(VALUES, repeat=2)))
def test_comparison_operators_are_consistent(a: str, b: str) -> None:
    def ev(op: str) -> Any:
        return evaluate(f"{a} {op} {b}", CONTEXTS)

    eq, lt, gt = ev("=="), ev("<"), ev(">")
    assert ev("!=") is (not eq)
    assert ev("<=") is (eq or lt)
    assert ev(">=") is (eq or gt)
    assert evaluate(f"{b} > {a}", CONTEXTS) is lt
    assert evaluate(f"{b} == {a}", CONTEXTS) is eq
    assert not (lt and gt) and not (eq and (lt or gt))


@pytest.mark.parametrize("text", VALUES)
def test_equality_is_reflexive_except_nan(text: str) -> None:
    assert evaluate(f"{text} == {text}", CONTEXTS) is (text != "NaN")


def test_arrays_and_objects_compare_by_identity() -> None:
    shared: list[Any] = []
    contexts = {"a": shared, "b": shared, "c": [], "o": {"x": {}}}
    assert evaluate("a == b", contexts) is True
    assert evaluate("a == c", contexts) is False
    assert evaluate("o.x == o.x", contexts) is True
    assert evaluate("fromJSON('[]') == fromJSON('[]')", {}) is False


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("'ABC' == 'abc'", True),
        ("'straße' == 'STRASSE'", False),  # one character at a time, like .NET
        ("'Ünïcode' == 'üNÏCODE'", True),
        ("'b' > 'A'", True),
        ("'10' < '9'", True),  # strings compare as strings…
        ("'10' < 9", False),  # …unless one side is a number
        ("' 0x10 ' == 16", True),
        ("'1_000' == 1000", False),
        ("'１' == 1", False),  # full-width digit is not a number
    ],
)
def test_coercion_details(expression: str, expected: bool) -> None:
    assert evaluate(expression, {}) is expected


# -- precedence ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "grouped"),
    [
        ("true || false && false", "true || (false && false)"),
        ("false && true || true", "(false && true) || true"),
        ("1 == 1 && 0", "(1 == 1) && 0"),
        ("1 < 2 == true", "(1 < 2) == true"),
        ("!0 == 1", "(!0) == 1"),
        ("!a.b", "!(a.b)"),
        ("2 > 1 > 0", "(2 > 1) > 0"),
    ],
)
def test_precedence(expression: str, grouped: str) -> None:
    contexts = {"a": {"b": 0}}
    assert same(evaluate(expression, contexts), evaluate(grouped, contexts))


def test_precedence_makes_a_difference() -> None:
    # Guards the table above: the groupings chosen do change the result otherwise.
    assert evaluate("(true || false) && false", {}) is False
    assert evaluate("(!a).b", {"a": {"b": 0}}) is None


# -- access and filters -------------------------------------------------------------


def test_property_access_is_case_insensitive_and_missing_is_null() -> None:
    contexts = {"GitHub": {"Event": {"Head_Commit": {"id": "abc"}}, "list": ["x", "y"]}}
    assert evaluate("github.event.head_commit.ID", contexts) == "abc"
    assert evaluate("GITHUB['event']['HEAD_COMMIT'].id", contexts) == "abc"
    assert evaluate("github.nope.deeper", contexts) is None
    assert evaluate("github.list[1]", contexts) == "y"
    assert evaluate("github.list['1']", contexts) == "y"
    assert evaluate("github.list[1.9]", contexts) == "y"
    assert evaluate("github.list.length", contexts) is None


def test_exact_key_wins_over_case_insensitive_match() -> None:
    assert evaluate("o.key", {"o": {"KEY": 1, "key": 2}}) == 2.0


def test_object_filters() -> None:
    contexts = {
        "needs": {
            "a": {"result": "success", "outputs": {"v": 1}},
            "b": {"result": "failure", "outputs": {}},
            "c": "not an object",
        },
        "m": [[1, 2], [3], "s"],
    }
    assert evaluate("needs.*.result", contexts) == ["success", "failure"]
    assert evaluate("needs.*.outputs.v", contexts) == [1]
    assert evaluate("contains(needs.*.result, 'FAILURE')", contexts) is True
    assert evaluate("m[*][0]", contexts) == [1, 3]
    assert evaluate("m.*.*", contexts) == [1, 2, 3]
    assert evaluate("nothing.*", {"nothing": None}) == []
    assert type(evaluate("m.*", contexts)) is list


def test_numbers_from_contexts_come_back_as_floats_at_the_top() -> None:
    result = evaluate("run.number", {"run": {"number": 7}})
    assert result == 7.0 and type(result) is float


# -- functions ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("format('{0}-{1}-{0}', 'a', 1.5)", "a-1.5-a"),
        ("format('{{0}} {0}', 'x')", "{0} x"),
        ("format('}}{{')", "}{"),
        ("join(fromJSON('[1, true, null, \"s\"]'), '+')", "1+true++s"),
        ("join(fromJSON('[1, 2]'))", "1,2"),
        ("join('abc', '-')", "abc"),
        ("join(fromJSON('{}'))", ""),
        ("startsWith('Hello', 'HE')", True),
        ("endsWith('Hello', 'LO')", True),
        ("endsWith(fromJSON('[]'), '')", False),
        ("contains(fromJSON('[\"A\"]'), 'a')", True),
        ("contains(fromJSON('{\"a\": 1}'), 'a')", False),
        (
            "toJSON(fromJSON('{\"a\": [1, 2.5, null]}'))",
            '{\n  "a": [\n    1,\n    2.5,\n    null\n  ]\n}',
        ),
        ("toJSON('x')", '"x"'),
        ("fromJSON('12')", 12.0),
        ("CoNtAiNs('abc', 'B')", True),
    ],
)
def test_builtin_functions(expression: str, expected: Any) -> None:
    assert same(evaluate(expression, {}), expected)


@pytest.mark.parametrize(
    ("expression", "message", "column"),
    [
        ("format('{0}')", "references more arguments", 1),
        ("1 == format('{x}', 1)", "format string is invalid", 6),
        ("format('{0', 1)", "format string is invalid", 1),
        ("format('a}b')", "format string is invalid", 1),
        ("  fromJSON('{')", "Error parsing fromJson", 3),
        ("fromJSON('  ')", "empty", 1),
        ("fromJSON('NaN')", "Error parsing fromJson", 1),
    ],
)
def test_function_errors(expression: str, message: str, column: int) -> None:
    with pytest.raises(ExpressionError) as raised:
        evaluate(expression, {})
    assert raised.value.kind == "evaluation"
    assert message in str(raised.value)
    assert raised.value.column == column


@pytest.mark.parametrize(
    ("number", "text"),
    [
        (1.0, "1"),
        (-0.0, "0"),
        (0.1 + 0.2, "0.3"),
        (1 / 3, "0.333333333333333"),
        (123456789012345.0, "123456789012345"),
        (1e15, "1E+15"),
        (1.5e20, "1.5E+20"),
        (0.0001, "0.0001"),
        (0.00001, "1E-05"),
        (math.inf, "Infinity"),
        (-math.inf, "-Infinity"),
        (math.nan, "NaN"),
    ],
)
def test_number_to_string_like_dotnet_g15(number: float, text: str) -> None:
    assert to_string(number) == text


def test_to_string_of_other_kinds() -> None:
    assert [to_string(v) for v in (None, True, False, "s", [1], {"a": 1})] == [
        "",
        "true",
        "false",
        "s",
        "Array",
        "Object",
    ]


# -- status and caller-supplied functions -------------------------------------------------


def test_status_functions_must_be_supplied() -> None:
    with pytest.raises(ExpressionError) as raised:
        evaluate("success()", {})
    assert raised.value.kind == "evaluation"
    assert "not available here" in str(raised.value)
    assert (
        evaluate(
            "SUCCESS() && !failure()",
            {},
            functions={"success": lambda: True, "failure": lambda: False},
        )
        is True
    )


def test_parse_allows_status_functions_only_when_asked() -> None:
    with pytest.raises(ExpressionError, match="Unrecognized function: 'success'"):
        parse("success()")
    node = parse("always() || failure()", functions=STATUS_FUNCTIONS)
    assert called_functions(node) == {"always", "failure"}
    with pytest.raises(ExpressionError, match="Too many parameters"):
        parse("always(1)", functions=STATUS_FUNCTIONS)


def test_custom_function_receives_evaluated_arguments() -> None:
    seen: list[tuple[Any, ...]] = []

    def hash_files(*args: Any) -> str:
        seen.append(args)
        return "h"

    assert (
        evaluate("hashFiles('a', x.y)", {"x": {"y": 2}}, functions={"hashfiles": hash_files}) == "h"
    )
    assert seen[-1] == ("a", 2)


# -- names, errors, analysis --------------------------------------------------------------


def test_named_values_and_called_functions() -> None:
    node = parse("contains(GitHub.ref, Env.X) || toJSON(needs.*.result) == steps['a'].outputs")
    assert named_values(node) == {"github", "env", "needs", "steps"}
    assert called_functions(node) == {"contains", "tojson"}


@pytest.mark.parametrize(
    ("expression", "kind", "column", "message"),
    [
        ("github.sha == ", "parsing", 12, "Unexpected end of expression: '=='"),
        ("(1 == 1", "parsing", 7, "Unexpected end of expression: '1'"),
        ("a.b.", "parsing", 4, "Unexpected end of expression"),
        ("1 === 1", "lexing", 5, "Unexpected symbol: '='"),
        ("  nope(1)", "parsing", 3, "Unrecognized function: 'nope'"),
        ("contains(1)", "parsing", 1, "Too few parameters"),
        ("x && y", "parsing", 6, "Unrecognized named-value: 'y'"),
        ("'a' == 'b", "lexing", 8, "Unexpected symbol: ''b'"),
        ("a ~ b", "lexing", 3, "Unexpected symbol: '~'"),
        ("'abc'[0]", "parsing", 6, "Unexpected symbol: '['"),
    ],
)
def test_error_kind_column_and_message(
    expression: str, kind: str, column: int, message: str
) -> None:
    with pytest.raises(ExpressionError) as raised:
        parse(expression, names={"github", "a", "x"})
    error = raised.value
    assert (error.kind, error.column) == (kind, column), str(error)
    assert message in str(error)
    assert f"Located at position {column} within expression: {expression}" in str(error)


def test_unknown_names_allowed_when_names_is_none() -> None:
    node = parse("anything.goes")
    assert named_values(node) == {"anything"}
    with pytest.raises(ExpressionError, match="not available here") as raised:
        evaluate_node(node, {})
    assert raised.value.kind == "evaluation"


def test_unsupported_python_values_are_an_evaluation_error() -> None:
    with pytest.raises(ExpressionError, match="Python type 'object'") as raised:
        evaluate("x == 1", {"x": object()})
    assert raised.value.kind == "evaluation"


def test_empty_expression_is_null() -> None:
    assert evaluate("", {}) is None
    assert evaluate("   ", {}) is None


def test_a_failing_custom_function_is_an_evaluation_error_at_its_call() -> None:
    def hash_files(*patterns: Any) -> str:
        raise OSError("disk on fire")

    with pytest.raises(ExpressionError) as raised:
        evaluate("'a' == hashFiles('**')", {}, functions={"hashfiles": hash_files})
    error = raised.value
    assert (error.kind, error.column) == ("evaluation", 8)
    assert "Function 'hashfiles' failed: disk on fire" in str(error)
    assert isinstance(error.__cause__, OSError)
