"""Matrix combinations with GitHub's exact rules, and readable keys for expanded jobs.

Rules ("Using a matrix for your jobs"): the Cartesian product of the variables, minus
every combination an `exclude` entry matches (all of the entry's keys equal; partial
entries allowed), then each `include` entry is merged into every product combination
where it overwrites none of the ORIGINAL matrix values (values added by earlier
includes may be overwritten); an entry that fits no combination becomes a new one.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

from workflow.expressions import to_string

SPECIAL_KEYS = ("include", "exclude")


class MatrixError(ValueError):
    """A matrix that cannot be expanded; ``key`` names the part that is wrong."""

    def __init__(self, message: str, key: str = "") -> None:
        super().__init__(message)
        self.key = key


def variables(matrix: Mapping[str, Any]) -> dict[str, list[Any]]:
    """The matrix's variables (every key but include/exclude) in their order."""
    result: dict[str, list[Any]] = {}
    for key, values in matrix.items():
        if key in SPECIAL_KEYS:
            continue
        if not isinstance(values, list):
            raise MatrixError(f"matrix variable '{key}' must be a list of values", key)
        if not values:
            raise MatrixError(f"matrix variable '{key}' has no values", key)
        result[key] = values
    return result


def product_size(matrix: Mapping[str, Any]) -> int:
    """How many combinations the product has, computed without building them."""
    sizes = [len(v) for v in variables(matrix).values()]
    return math.prod(sizes) if sizes else 0


def combinations(matrix: Mapping[str, Any], limit: int) -> list[dict[str, Any]]:
    """Every combination of ``matrix`` in GitHub's order.

    Raises MatrixError when the product or the result exceeds ``limit`` (checked before
    anything is built), or when the matrix is malformed or ends up empty.
    """
    vectors = variables(matrix)
    include = _entries(matrix, "include")
    exclude = _entries(matrix, "exclude")
    size = product_size(matrix)
    if size > limit:
        shape = " × ".join(str(len(v)) for v in vectors.values())
        raise MatrixError(f"the matrix has {size:,} combinations ({shape}); the limit is {limit}")
    for entry in exclude:
        for key in entry:
            if key not in vectors:
                raise MatrixError(
                    f"`exclude` names '{key}', which is not a matrix variable "
                    f"(variables: {', '.join(vectors) or 'none'})",
                    "exclude",
                )
    base = _product(vectors) if vectors else []
    base = [c for c in base if not any(_matches(c, entry) for entry in exclude)]
    extended = [dict(c) for c in base]
    extra: list[dict[str, Any]] = []
    for entry in include:
        fitted = False
        for original, combo in zip(base, extended, strict=True):
            if all(k not in original or same(original[k], v) for k, v in entry.items()):
                combo.update(entry)
                fitted = True
        if not fitted:
            extra.append(dict(entry))
    result = extended + extra
    if not result:
        raise MatrixError("the matrix has no combinations left (everything was excluded)")
    if len(result) > limit:
        raise MatrixError(f"the matrix has {len(result):,} combinations; the limit is {limit}")
    return result


def _entries(matrix: Mapping[str, Any], key: str) -> list[dict[str, Any]]:
    value = matrix.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(e, dict) for e in value):
        raise MatrixError(f"`{key}` must be a list of mappings", key)
    return value


def _product(vectors: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    combos: list[dict[str, Any]] = [{}]
    for key, values in vectors.items():
        combos = [{**combo, key: value} for combo in combos for value in values]
    return combos


def _matches(combo: Mapping[str, Any], entry: Mapping[str, Any]) -> bool:
    return all(k in combo and same(combo[k], v) for k, v in entry.items())


def same(a: Any, b: Any) -> bool:
    """Equality that keeps types apart (``True`` is not ``1``, ``'1'`` is not ``1``)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def render_value(value: Any) -> str:
    """A matrix value inside a job key: scalars as GitHub prints them, objects as JSON."""
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"), sort_keys=False, default=str)
    return to_string(value)


def job_keys(job_id: str, combos: Sequence[Mapping[str, Any]]) -> list[str]:
    """Stable readable keys, ``test (3.11, ubuntu)``, made unique when two render alike."""
    keys: list[str] = []
    seen: set[str] = set()
    for combo in combos:
        base = f"{job_id} ({', '.join(render_value(v) for v in combo.values())})"
        key, n = base, 2
        while key in seen:
            key = f"{base} #{n}"
            n += 1
        seen.add(key)
        keys.append(key)
    return keys
