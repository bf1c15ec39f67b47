"""GitHub's own cross-language expression cases (actions/languageservices testdata).

Every case of every file runs. ``options.skip`` is honoured only for implementations
named ``python`` or ``conveyor``: the cases in the data skip only ``typescript``, whose
lexer reports columns per line and which has no memory limit — both things GitHub's
runtime (and Conveyor) does, so those cases apply to us.
"""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path
from typing import Any

import pytest

from workflow.expressions import ExpressionError, evaluate

_OURS = {"python", "conveyor"}


def _folder() -> Path:
    override = os.environ.get("CONVEYOR_CONFORMANCE_DIR")
    if override:
        return Path(override)
    return (
        Path(__file__).resolve().parents[2].parent
        / "shared"
        / "conformance"
        / ("github-expressions")
    )


def _load() -> list[Any]:
    folder = _folder()
    files = sorted(folder.glob("*.json"))
    if not files:
        # A missing folder must fail the run, not silently collect zero cases.
        return [pytest.param(None, id="conformance-data-missing")]
    params = []
    for file in files:
        groups = json.loads(file.read_text(encoding="utf-8"))
        for group, cases in groups.items():
            for index, case in enumerate(cases):
                skip = set((case.get("options") or {}).get("skip") or ())
                marks = (
                    [pytest.mark.skip(reason=f"skipped for {skip & _OURS}")] if skip & _OURS else []
                )
                params.append(pytest.param(case, id=f"{file.stem}/{group}/{index}", marks=marks))
    return params


def _kind(value: Any) -> str:
    if value is None:
        return "Null"
    if isinstance(value, bool):
        return "Boolean"
    if isinstance(value, int | float):
        return "Number"
    if isinstance(value, str):
        return "String"
    if isinstance(value, list):
        return "Array"
    if isinstance(value, dict):
        return "Object"
    raise AssertionError(f"evaluate returned a non-expression value {value!r}")


_SPECIAL_NUMBERS = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf, "-0": -0.0}


def _expected_value(kind: str, value: Any) -> Any:
    if kind == "Number" and isinstance(value, str):
        return _SPECIAL_NUMBERS[value]
    return value


def _same(actual: Any, expected: Any) -> bool:
    if isinstance(expected, float) and math.isnan(expected):
        return isinstance(actual, float) and math.isnan(actual)
    if isinstance(expected, list):
        return (
            isinstance(actual, list)
            and len(actual) == len(expected)
            and all(_same(a, e) for a, e in zip(actual, expected, strict=True))
        )
    if isinstance(expected, dict):
        return (
            isinstance(actual, dict)
            and actual.keys() == expected.keys()
            and all(_same(actual[k], expected[k]) for k in expected)
        )
    if isinstance(expected, bool) or expected is None:
        return actual is expected
    if isinstance(expected, int | float):
        return (
            isinstance(actual, int | float)
            and not isinstance(actual, bool)
            and (actual == expected)
        )
    return type(actual) is type(expected) and bool(actual == expected)


_POSITION = re.compile(r"Located at position (\d+) within expression")


@pytest.mark.parametrize("case", _load())
def test_case(case: dict[str, Any] | None) -> None:
    if case is None:
        pytest.fail(
            f"no conformance cases found in {_folder()} "
            "(set CONVEYOR_CONFORMANCE_DIR to the github-expressions folder)"
        )
    contexts = case.get("contexts") or {}
    if "err" in case:
        expected = case["err"]
        with pytest.raises(ExpressionError) as raised:
            evaluate(case["expr"], contexts)
        error = raised.value
        assert error.kind == expected["kind"], str(error)
        # GitHub's wording before the quoted symbol ("Unexpected symbol", …).
        headline = re.split(r"[:.(]", expected["value"], maxsplit=1)[0]
        assert headline.lower() in str(error).lower(), (str(error), expected["value"])
        position = _POSITION.search(expected["value"])
        if position:
            assert error.column == int(position.group(1)), str(error)
        return
    result = evaluate(case["expr"], contexts)
    kind = case["result"]["kind"]
    assert _kind(result) == kind, repr(result)
    assert _same(result, _expected_value(kind, case["result"]["value"])), repr(result)
