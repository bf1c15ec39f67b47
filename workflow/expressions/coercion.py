"""GitHub's value model: kinds, truthiness, number/string conversion, loose comparison.

Values are plain Python data: ``None``, ``bool``, numbers (``float``; ``int`` from
contexts is accepted), ``str``, lists/tuples (arrays) and mappings (objects).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from enum import Enum
from typing import Any


class Kind(Enum):
    NULL = "Null"
    BOOLEAN = "Boolean"
    NUMBER = "Number"
    STRING = "String"
    ARRAY = "Array"
    OBJECT = "Object"


class ValueTypeError(TypeError):
    """A value that is not expression data (for example a Python object in a context)."""


class FilteredArray(list[Any]):
    """The result of an object filter (``a.*``): further access maps over its items."""


def kind_of(value: Any) -> Kind:
    """The expression kind of ``value``; raises :class:`ValueTypeError` for other types."""
    if value is None:
        return Kind.NULL
    if isinstance(value, bool):
        return Kind.BOOLEAN
    if isinstance(value, int | float):
        return Kind.NUMBER
    if isinstance(value, str):
        return Kind.STRING
    if isinstance(value, list | tuple):
        return Kind.ARRAY
    if isinstance(value, Mapping):
        return Kind.OBJECT
    raise ValueTypeError(
        f"a value of Python type '{type(value).__name__}' is not expression data "
        "(expected null, boolean, number, string, array or object)"
    )


def is_primitive(value: Any) -> bool:
    return kind_of(value) not in (Kind.ARRAY, Kind.OBJECT)


def to_bool(value: Any) -> bool:
    """Truthiness: ``null``, ``false``, ``0``, ``-0``, ``NaN`` and ``''`` are false."""
    kind = kind_of(value)
    if kind is Kind.NULL:
        return False
    if kind is Kind.BOOLEAN:
        return bool(value)
    if kind is Kind.NUMBER:
        return not (value == 0 or math.isnan(value))
    if kind is Kind.STRING:
        return len(value) > 0
    return True


_DECIMAL = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?\Z")
_HEX = re.compile(r"0x[0-9a-fA-F]+\Z")
_OCTAL = re.compile(r"0o[0-7]+\Z")
_INFINITY = {"Infinity": math.inf, "+Infinity": math.inf, "-Infinity": -math.inf}


def parse_number(text: str) -> float:
    """GitHub's string-to-number rule: trimmed; empty is 0; decimal with exponent,
    ``0x`` hex, ``0o`` octal, ``[+-]Infinity``; anything else is NaN."""
    text = text.strip()
    if not text:
        return 0.0
    if _DECIMAL.match(text):
        return float(text)
    if _HEX.match(text):
        return float(int(text[2:], 16))
    if _OCTAL.match(text):
        return float(int(text[2:], 8))
    return _INFINITY.get(text, math.nan)


def to_number(value: Any) -> float:
    """Number coercion: null→0, false→0, true→1, strings parsed, arrays/objects→NaN."""
    kind = kind_of(value)
    if kind is Kind.NULL:
        return 0.0
    if kind is Kind.BOOLEAN:
        return 1.0 if value else 0.0
    if kind is Kind.NUMBER:
        return float(value)
    if kind is Kind.STRING:
        return parse_number(value)
    return math.nan


def format_number(number: float) -> str:
    """A number as GitHub prints it (.NET ``G15``): ``1``, ``0.5``, ``1E+20``, ``NaN``."""
    if math.isnan(number):
        return "NaN"
    if math.isinf(number):
        return "Infinity" if number > 0 else "-Infinity"
    if number == 0:
        return "0"  # also for -0
    return format(float(number), ".15g").replace("e", "E")


def to_string(value: Any) -> str:
    """String coercion used by interpolation and ``format``: null→'', booleans
    'true'/'false', numbers as :func:`format_number`, arrays 'Array', objects 'Object'."""
    kind = kind_of(value)
    if kind is Kind.NULL:
        return ""
    if kind is Kind.BOOLEAN:
        return "true" if value else "false"
    if kind is Kind.NUMBER:
        return format_number(value)
    if kind is Kind.STRING:
        return str(value)
    return "Array" if kind is Kind.ARRAY else "Object"


def fold_case(text: str) -> str:
    """Upper-cases for case-insensitive comparison like .NET ``OrdinalIgnoreCase``:
    one character at a time (no 'ß'→'SS'), and dotless 'ı' stays itself."""
    if text.isascii():
        return text.upper()
    out = []
    for char in text:
        upper = char.upper()
        out.append(upper if len(upper) == 1 and char != "ı" else char)
    return "".join(out)


def _coerce_pair(left: Any, right: Any) -> tuple[Kind, Any, Kind, Any]:
    """Brings two values to a common kind the way GitHub does before comparing:
    null/boolean become numbers, a string next to a number becomes a number;
    arrays and objects are never converted."""
    lk, rk = kind_of(left), kind_of(right)
    if lk is not rk:
        if lk in (Kind.NULL, Kind.BOOLEAN):
            left, lk = to_number(left), Kind.NUMBER
        if rk in (Kind.NULL, Kind.BOOLEAN):
            right, rk = to_number(right), Kind.NUMBER
        if lk is Kind.NUMBER and rk is Kind.STRING:
            right, rk = to_number(right), Kind.NUMBER
        elif lk is Kind.STRING and rk is Kind.NUMBER:
            left, lk = to_number(left), Kind.NUMBER
    return lk, left, rk, right


def loose_equals(left: Any, right: Any) -> bool:
    """``==``: coerced as :func:`_coerce_pair`; strings compare case-insensitively,
    NaN equals nothing, arrays and objects only themselves."""
    lk, lv, rk, rv = _coerce_pair(left, right)
    if lk is not rk:
        return False
    if lk is Kind.NULL:
        return True
    if lk is Kind.NUMBER:
        return bool(lv == rv)  # NaN != NaN already
    if lk is Kind.STRING:
        return fold_case(lv) == fold_case(rv)
    if lk is Kind.BOOLEAN:
        return bool(lv) == bool(rv)
    return lv is rv


def greater_than(left: Any, right: Any) -> bool:
    """``>`` after coercion; false for NaN, arrays, objects and mixed kinds."""
    lk, lv, rk, rv = _coerce_pair(left, right)
    if lk is not rk:
        return False
    if lk is Kind.NUMBER:
        return bool(lv > rv)
    if lk is Kind.STRING:
        return fold_case(lv) > fold_case(rv)
    if lk is Kind.BOOLEAN:
        return bool(lv) and not rv
    return False


def less_than(left: Any, right: Any) -> bool:
    """``<``, mirror of :func:`greater_than`."""
    return greater_than(right, left)


def compare(op: str, left: Any, right: Any) -> bool:
    """Applies a comparison operator (``== != < <= > >=``)."""
    if op == "==":
        return loose_equals(left, right)
    if op == "!=":
        return not loose_equals(left, right)
    if op == "<":
        return less_than(left, right)
    if op == ">":
        return greater_than(left, right)
    if op == "<=":
        return loose_equals(left, right) or less_than(left, right)
    if op == ">=":
        return loose_equals(left, right) or greater_than(left, right)
    raise ValueError(f"unknown comparison operator {op!r}")
