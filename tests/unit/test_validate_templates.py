"""GitHub's template rules: `${{ }}` must hold an expression, and a templated value is
one expression whose length is limited as a whole."""

from __future__ import annotations

import pytest

from workflow import validate
from workflow.expressions import MAX_EXPRESSION_LENGTH
from workflow.validate_expr import templated_length


def step(body: str) -> str:
    return f"on: push\njobs:\n  j:\n    runs-on: x\n    steps:\n      - {body}\n"


@pytest.mark.parametrize(
    ("body", "column", "path"),
    [
        ("run: echo ${{ }}", 19, "jobs.j.steps[0].run"),
        ("run: echo ${{}} ok", 19, "jobs.j.steps[0].run"),
        ("run: echo ${{ github.sha }} ${{   }}", 37, "jobs.j.steps[0].run"),
        ("run: x\n        name: '${{ }}'", 16, "jobs.j.steps[0].name"),
        ("run: x\n        env: {A: '${{ }}'}", 19, "jobs.j.steps[0].env.A"),
        ("run: x\n        if: ${{ }}", 13, "jobs.j.steps[0].if"),
    ],
)
def test_an_empty_expression_is_an_error(body: str, column: int, path: str) -> None:
    [error] = validate(step(body))
    line = 7 if "\n" in body else 6
    assert (error.line, error.column, error.path) == (line, column, path)
    assert error.message == "An expression was expected"


def test_an_empty_expression_is_refused_everywhere_at_once() -> None:
    text = (
        "on: push\nenv: {A: '${{ }}'}\njobs:\n  j:\n    runs-on: x\n"
        "    env: {B: 'x${{}}'}\n    steps:\n      - run: ${{ }}\n"
    )
    assert [(e.line, e.path) for e in validate(text)] == [
        (2, "env.A"),
        (6, "jobs.j.env.B"),
        (8, "jobs.j.steps[0].run"),
    ]


def run_of(length: int, text: str = "", template: str = "${{ github.sha }}") -> str:
    """A `run:` value whose templated form is exactly ``length`` characters long."""
    base = templated_length(text + template, [(len(text), len(text + template),
                                               template[4:-3])])
    return text + "y" * (length - base) + template


def test_templated_length_is_githubs_format_expression() -> None:
    # `${{ a }}` alone is the expression `a`; with text it is format('…{0}', a).
    value = "it's {x} ${{ github.sha }}!"
    spans = [(9, 26, "github.sha")]
    expected = "format('it''s {{x}} {0}!', github.sha)"
    assert templated_length(value, spans) == len(expected)
    assert templated_length("${{ github.sha }}", [(0, 17, "github.sha")]) == 10
    # .NET counts UTF-16 code units: a character outside the BMP counts twice.
    assert templated_length("😀${{ a }}", [(1, 9, "a")]) == len("format('😀{0}', a)") + 1


def test_a_whole_run_script_at_the_limit_is_accepted_one_more_is_refused() -> None:
    at_limit = run_of(MAX_EXPRESSION_LENGTH, text="echo ")
    assert validate(step(f"run: '{at_limit}'")) == []
    over = run_of(MAX_EXPRESSION_LENGTH + 1, text="echo ")
    [error] = validate(step(f"run: '{over}'"))
    assert (error.line, error.column, error.path) == (6, 15, "jobs.j.steps[0].run")
    assert error.message.startswith(f"Exceeded max expression length {MAX_EXPRESSION_LENGTH}")
    assert "21,001 characters" in error.message


def test_each_expression_is_short_but_the_value_is_not() -> None:
    # Forty short templates and lines of text: no single `${{ }}` is long.
    line = "          echo " + "z" * 520 + " ${{ github.sha }}\n"
    [error] = validate(step("run: |\n" + line * 40))
    assert error.path == "jobs.j.steps[0].run"
    assert "Exceeded max expression length" in error.message


def test_a_long_value_without_templates_is_not_an_expression() -> None:
    assert validate(step("run: " + "y" * (MAX_EXPRESSION_LENGTH + 50))) == []
