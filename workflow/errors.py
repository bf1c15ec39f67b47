"""Errors a workflow file can have: each names where it is and what to do about it."""

from __future__ import annotations

from dataclasses import dataclass


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


class WorkflowInvalid(Exception):
    """Raised with every error found in a workflow, sorted by position."""

    def __init__(self, errors: list[WorkflowError] | tuple[WorkflowError, ...]) -> None:
        self.errors: tuple[WorkflowError, ...] = tuple(sorted(errors))
        first = self.errors[0].message if self.errors else "invalid workflow"
        more = f" (and {len(self.errors) - 1} more)" if len(self.errors) > 1 else ""
        super().__init__(first + more)
