"""Shell words and template splitting shared by the runner script generator."""

from __future__ import annotations

from workflow.expressions import ExpressionError, find_templates


class ScriptError(ValueError):
    """The job cannot be turned into a runner script (names the step and expression)."""


def sh_quote(text: str) -> str:
    """``text`` as one single-quoted shell word: nothing inside can expand or escape."""
    return "'" + text.replace("'", "'\\''") + "'"


def literal_word(text: str, where: str) -> str:
    """``text`` quoted (empty for empty text); NUL, which no shell can hold, is refused."""
    if "\0" in text:
        raise ScriptError(f"{where}: contains a NUL character, which a shell cannot carry")
    return sh_quote(text) if text else ""


def split_templates(text: str, where: str) -> list[tuple[int, int, str]]:
    """``find_templates`` with its errors as ScriptError naming ``where``."""
    try:
        return find_templates(text)
    except ExpressionError as exc:
        raise ScriptError(f"{where}: {exc}") from None


def unwrap_template(expression: str, where: str) -> str:
    """An ``if:`` may be written bare or as one whole ``${{ … }}``: the bare form."""
    stripped = expression.strip()
    templates = split_templates(stripped, where)
    if len(templates) == 1 and templates[0][:2] == (0, len(stripped)):
        return templates[0][2]
    if templates:
        raise ScriptError(
            f"{where}: '{expression}' mixes text and ${{{{ }}}}; write one expression"
        )
    return expression
