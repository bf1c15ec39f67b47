"""The built-in functions and the memory budget that bounds what they may build."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from workflow.expressions.coercion import (
    Kind,
    fold_case,
    is_primitive,
    kind_of,
    loose_equals,
    to_string,
)
from workflow.expressions.errors import MAX_MEMORY_BYTES

# Job-status functions: only the caller knows their answer (see ``evaluate(functions=)``).
STATUS_FUNCTIONS = frozenset({"success", "failure", "always", "cancelled"})

# name -> (min, max) arguments
BUILTIN_ARITY: dict[str, tuple[int, int]] = {
    "case": (3, 255),
    "contains": (2, 2),
    "startswith": (2, 2),
    "endswith": (2, 2),
    "format": (1, 255),
    "join": (1, 2),
    "tojson": (1, 1),
    "fromjson": (1, 1),
}


class FunctionFailed(Exception):
    """A function could not produce a value; the evaluator adds where it happened."""


class Budget:
    """Bytes held by intermediate results of one evaluation, GitHub-style: a string
    costs 26 + 2 per character. Results of finished sub-calls are released, so the
    total is what is alive at once, not everything ever built."""

    def __init__(self, limit: int = MAX_MEMORY_BYTES) -> None:
        self.limit = limit
        self.used = 0

    def charge(self, nbytes: int) -> None:
        if self.used + nbytes > self.limit:
            raise FunctionFailed(
                f"The maximum allowed memory size was exceeded (the limit is {self.limit} bytes)"
            )
        self.used += nbytes

    def charge_string_length(self, length: int) -> None:
        self.charge(26 + 2 * length)

    def release_to(self, used: int) -> None:
        self.used = used


def _contains(args: Sequence[Any], budget: Budget) -> Any:
    search, item = args
    if is_primitive(search):
        if not is_primitive(item):
            return False
        return fold_case(to_string(item)) in fold_case(to_string(search))
    if kind_of(search) is Kind.ARRAY:
        return any(loose_equals(item, element) for element in search)
    return False


def _starts_with(args: Sequence[Any], budget: Budget) -> Any:
    text, prefix = args
    if not (is_primitive(text) and is_primitive(prefix)):
        return False
    return fold_case(to_string(text)).startswith(fold_case(to_string(prefix)))


def _ends_with(args: Sequence[Any], budget: Budget) -> Any:
    text, suffix = args
    if not (is_primitive(text) and is_primitive(suffix)):
        return False
    return fold_case(to_string(text)).endswith(fold_case(to_string(suffix)))


def _format(args: Sequence[Any], budget: Budget) -> Any:
    """``format('{0} and {1}', a, b)``; ``{{`` and ``}}`` are literal braces."""
    template = to_string(args[0])
    pieces: list[str] = []
    strings: dict[int, str] = {}
    i, n = 0, len(template)
    while i < n:
        left = template.find("{", i)
        right = template.find("}", i)
        if left >= 0 and (right < 0 or left < right):
            if template.startswith("{", left + 1):
                pieces.append(template[i : left + 1])
                i = left + 2
                continue
            digits = template[left + 1 : right] if right > left else ""
            if not (digits.isascii() and digits.isdigit()):
                raise FunctionFailed(f"The following format string is invalid: {template}")
            index = int(digits)
            if index + 1 >= len(args):
                raise FunctionFailed(
                    "The following format string references more arguments than were "
                    f"supplied: {template}"
                )
            pieces.append(template[i:left])
            if index not in strings:
                strings[index] = to_string(args[index + 1])
            pieces.append(strings[index])
            i = right + 1
        elif right >= 0:
            if not template.startswith("}", right + 1):
                raise FunctionFailed(f"The following format string is invalid: {template}")
            pieces.append(template[i : right + 1])
            i = right + 2
        else:
            pieces.append(template[i:])
            break
    # Checked before joining so that '{0}{0}{0}…' of a big value never gets built.
    budget.charge_string_length(sum(len(p) for p in pieces))
    return "".join(pieces)


def _join(args: Sequence[Any], budget: Budget) -> Any:
    """``join(array, separator=',')``; a primitive is returned as its string."""
    value = args[0]
    if is_primitive(value):
        return to_string(value)
    if kind_of(value) is not Kind.ARRAY:
        return ""
    separator = ","
    if len(args) > 1 and is_primitive(args[1]):
        separator = to_string(args[1])
    items = [to_string(item) for item in value]
    length = sum(len(s) for s in items) + len(separator) * max(0, len(items) - 1)
    budget.charge_string_length(length)
    return separator.join(items)


def _json_ready(value: Any) -> Any:
    # Integral numbers print without '.0' and NaN/Infinity as null, like JSON.stringify.
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**63:
        return int(value)
    return value


def _to_json_value(value: Any) -> Any:
    kind = kind_of(value)
    if kind is Kind.ARRAY:
        return [_to_json_value(v) for v in value]
    if kind is Kind.OBJECT:
        return {str(k): _to_json_value(v) for k, v in value.items()}
    return _json_ready(value)


def _to_json(args: Sequence[Any], budget: Budget) -> Any:
    """Pretty JSON with two-space indentation, as GitHub prints it."""
    try:
        text = json.dumps(_to_json_value(args[0]), indent=2, ensure_ascii=False)
    except RecursionError:
        raise FunctionFailed("toJSON: the value is nested too deeply") from None
    budget.charge_string_length(len(text))
    return text


def _float_numbers(value: str) -> float:
    return float(value)


def _from_json(args: Sequence[Any], budget: Budget) -> Any:
    text = to_string(args[0])
    if not text.strip():
        raise FunctionFailed("fromJSON: the input is empty")
    try:
        value = json.loads(
            text,
            parse_int=_float_numbers,
            parse_constant=_reject_constant,
        )
    except RecursionError:
        raise FunctionFailed("fromJSON: the JSON is nested too deeply") from None
    except ValueError as exc:
        raise FunctionFailed(f"Error parsing fromJson: {exc}") from None
    budget.charge_string_length(len(text))
    return value


def _reject_constant(name: str) -> Any:
    raise ValueError(f"'{name}' is not JSON")


BuiltinFunction = Callable[[Sequence[Any], Budget], Any]

BUILTINS: Mapping[str, BuiltinFunction] = {
    "contains": _contains,
    "startswith": _starts_with,
    "endswith": _ends_with,
    "format": _format,
    "join": _join,
    "tojson": _to_json,
    "fromjson": _from_json,
}
