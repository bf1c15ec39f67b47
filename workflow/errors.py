"""Errors a workflow file can have: each names where it is and what to do about it."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

_DROPPED = re.compile(r"(\d+) more errors not shown")


@dataclass(frozen=True, order=True)
class WorkflowError:
    """One problem in a workflow file.

    ``path`` is the dotted/indexed location (``jobs.test.needs[1]``), ``line`` and
    ``column`` are 1-based positions in the YAML text (0 when unknown).
    """

    line: int
    column: int
    path: str
    message: str

    def format(self, filename: str = "<workflow>") -> str:
        return f"{filename}:{self.line}:{self.column}: {self.path}: {self.message}"


def dropped_note(count: int) -> WorkflowError:
    """The last entry of a capped error list: how many errors were left out."""
    return WorkflowError(0, 0, "", f"{count} more errors not shown")


def dropped_count(error: WorkflowError) -> int:
    """How many errors ``error`` says were left out (0: it is a real error)."""
    if error.line or error.column or error.path:
        return 0
    found = _DROPPED.fullmatch(error.message)
    return int(found.group(1)) if found else 0


class WorkflowInvalid(Exception):
    """Raised with every error found in a workflow, sorted by position (a note of how
    many were left out, if any, stays last: ``dropped``)."""

    def __init__(self, errors: Iterable[WorkflowError]) -> None:
        given = list(errors)
        real = sorted(e for e in given if not dropped_count(e))
        self.dropped = sum(dropped_count(e) for e in given)
        note = (dropped_note(self.dropped),) if self.dropped else ()
        self.errors: tuple[WorkflowError, ...] = (*real, *note)
        first = real[0].message if real else "invalid workflow"
        others = len(real) - 1 + self.dropped
        more = f" (and {others} more)" if others > 0 else ""
        super().__init__(first + more)
