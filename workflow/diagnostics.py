"""Collecting workflow errors with their positions in the file."""

from __future__ import annotations

from workflow.errors import WorkflowError, dropped_note
from workflow.schema import MAX_ERRORS
from workflow.yamlsafe import YNode, YScalar

Position = tuple[int, int]


class Errors:
    """Every error found in one workflow, in the order found (sorted when raised)."""

    def __init__(self, text: str = "") -> None:
        self.items: list[WorkflowError] = []
        self._lines = text.splitlines()
        self.dropped = 0

    def add(self, at: YNode | Position | None, path: str, message: str) -> None:
        if isinstance(at, YNode):
            line, column = at.line, at.column
        elif at is None:
            line, column = 0, 0
        else:
            line, column = at
        if len(self.items) >= MAX_ERRORS:
            self.dropped += 1
            return
        self.items.append(WorkflowError(line, column, path, message))

    def __bool__(self) -> bool:
        return bool(self.items)

    def final(self) -> list[WorkflowError]:
        """Sorted errors; a last entry says how many were left out, if any."""
        result = sorted(set(self.items))
        if self.dropped:
            result.append(dropped_note(self.dropped))
        return result

    def locate(self, scalar: YScalar, offset: int) -> Position:
        """The file position of character ``offset`` of a scalar's value.

        Exact for single-line plain and quoted scalars and literal (``|``) blocks;
        elsewhere (folded blocks, escapes) the scalar's own position.
        """
        text = scalar.text
        if scalar.style in ("", "'", '"') and "\n" not in text:
            if scalar.style == '"' and "\\" in text:
                return scalar.line, scalar.column
            if scalar.style == "'" and "'" in text:
                return scalar.line, scalar.column
            shift = 0 if scalar.style == "" else 1
            return scalar.line, scalar.column + shift + offset
        if scalar.style == "|":
            before = text[:offset]
            row = before.count("\n")
            col = offset - (before.rfind("\n") + 1)
            line_no = scalar.line + 1 + row  # block content starts below the indicator
            indent = self._indent_of_block(scalar.line)
            if indent is not None:
                return line_no, indent + 1 + col
        return scalar.line, scalar.column

    def _indent_of_block(self, header_line: int) -> int | None:
        for source in self._lines[header_line:]:
            if source.strip():
                return len(source) - len(source.lstrip(" "))
        return None
