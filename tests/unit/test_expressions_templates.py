"""``${{ }}`` templates: finding, interpolating, evaluating."""

from __future__ import annotations

import pytest

from workflow.expressions import (
    ExpressionError,
    evaluate_template,
    find_templates,
    interpolate,
    is_template,
)

CONTEXTS = {
    "matrix": {"os": "linux", "n": 3, "list": ["a", "b"]},
    "env": {"EMPTY": None},
}


def test_find_templates_offsets_and_inner_text() -> None:
    text = "a ${{ matrix.os }} b ${{1}}"
    found = find_templates(text)
    assert found == [(2, 18, "matrix.os"), (21, 27, "1")]
    assert [text[s:e] for s, e, _ in found] == ["${{ matrix.os }}", "${{1}}"]


@pytest.mark.parametrize(
    ("text", "inner"),
    [
        ("${{ '}}' }}", "'}}'"),
        ("${{ 'it''s }}' }}", "'it''s }}'"),
        ("${{ format('{{0}}}}', 1) }}", "format('{{0}}}}', 1)"),
    ],
)
def test_quotes_inside_templates_are_honoured(text: str, inner: str) -> None:
    assert find_templates(text) == [(0, len(text), inner)]


@pytest.mark.parametrize(
    ("text", "column"),
    [("echo ${{ matrix.os", 6), ("${{ 1 }} and ${{ 'x }}", 14)],
)
def test_unterminated_template_is_an_error(text: str, column: int) -> None:
    with pytest.raises(ExpressionError) as raised:
        find_templates(text)
    assert raised.value.kind == "parsing"
    assert raised.value.column == column
    assert "Unterminated" in str(raised.value)


def test_interpolate_uses_github_string_coercion() -> None:
    text = "os=${{ matrix.os }} n=${{ matrix.n }} half=${{ 0.5 }} e=[${{ env.EMPTY }}]"
    assert interpolate(text, CONTEXTS) == "os=linux n=3 half=0.5 e=[]"
    assert interpolate("${{ matrix.list }}/${{ matrix }}", CONTEXTS) == "Array/Object"
    assert interpolate("no templates here", CONTEXTS) == "no templates here"


def test_evaluate_template_returns_raw_value_only_for_a_single_whole_template() -> None:
    assert evaluate_template("${{ matrix.list }}", CONTEXTS) == ["a", "b"]
    assert evaluate_template("${{ matrix.n == 3 }}", CONTEXTS) is True
    assert evaluate_template(" ${{ matrix.n == 3 }}", CONTEXTS) == " true"
    assert evaluate_template("${{ 1 }}${{ 2 }}", CONTEXTS) == "12"
    assert evaluate_template("plain", CONTEXTS) == "plain"


def test_errors_inside_templates_name_the_expression() -> None:
    with pytest.raises(ExpressionError) as raised:
        interpolate("run ${{ matrix.os == }}", CONTEXTS)
    assert raised.value.kind == "parsing"
    assert "matrix.os ==" in str(raised.value)
    with pytest.raises(ExpressionError, match="Unrecognized named-value: 'secrets'"):
        interpolate("${{ secrets.X }}", CONTEXTS)


def test_status_functions_in_templates() -> None:
    assert evaluate_template("${{ always() }}", {}, functions={"always": lambda: True}) is True


def test_is_template() -> None:
    assert is_template("a ${{ b }}")
    assert not is_template("a $ {{ b }}")
    assert not is_template("${ b }")
