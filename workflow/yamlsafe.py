"""Bounded, position-keeping YAML loading for workflow files.

PyYAML's own loaders build Python objects and forget where each value came from, and
they expand aliases while constructing, so a "billion laughs" file exhausts memory
before anyone can count. Here a small composer reads the parser's event stream (libyaml
when available) and builds a tree of located nodes. Aliases share the anchored subtree
(never copied) and every node knows its expanded ``size``, so the expanded total is
counted arithmetically against a budget as the tree is built.

Scalars follow YAML 1.2's core schema as GitHub does: only ``true``/``false`` are
booleans (``on:``, ``yes`` and ``no`` are strings), no sexagesimal numbers, no
timestamps; a number must fit GitHub's 64-bit float. Keys are always strings, taken as
written, and compared ignoring case when looking for duplicates (GitHub's rule).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

try:
    from yaml._yaml import CParser as _Parser
except ImportError:  # pragma: no cover - libyaml missing: the pure-Python parser
    from yaml import SafeLoader as _Parser  # type: ignore[assignment]

MAX_FILE_BYTES = 1024 * 1024
MAX_NODES = 100_000  # after alias expansion
MAX_DEPTH = 50  # nested lists and mappings: GitHub's parser refuses the 51st level

_TAG = "tag:yaml.org,2002:"
_NULL = re.compile(r"^(?:~|null|Null|NULL|)$")
_BOOL = re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$")
_INT = re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$")
_FLOAT = re.compile(
    r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
    r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
)
# GitHub's template directive `${{ insert }}`, which splices a mapping into its parent.
_INSERT = re.compile(r"^\$\{\{\s*insert(?:\s.*)?\}\}$", re.DOTALL)


class YamlLimitError(Exception):
    """The input exceeds a bound or is not loadable; carries a 1-based position."""

    def __init__(self, message: str, line: int = 1, column: int = 1, path: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.column = column
        self.path = path


@dataclass(eq=False)
class YNode:
    line: int  # 1-based
    column: int  # 1-based
    size: int  # nodes in this subtree after alias expansion


@dataclass(eq=False)
class YScalar(YNode):
    value: Any  # None, bool, int, float or str
    text: str  # the scalar as written (after YAML unquoting)
    style: str  # "" plain, "'", '"', "|", ">"

    @property
    def plain(self) -> bool:
        return self.style == ""


@dataclass(eq=False)
class YSeq(YNode):
    items: list[YNode] = field(default_factory=list)


@dataclass(eq=False)
class YEntry:
    key: YScalar
    value: YNode


@dataclass(eq=False)
class YMap(YNode):
    entries: dict[str, YEntry] = field(default_factory=dict)

    def get(self, key: str) -> YNode | None:
        entry = self.entries.get(key)
        return entry.value if entry else None


@dataclass(frozen=True)
class Problem:
    """A non-fatal problem found while composing (the tree is still usable)."""

    line: int
    column: int
    path: str
    message: str


@dataclass
class Document:
    root: YNode
    problems: list[Problem]


def load_document(
    text: str | bytes, entry_limits: Mapping[str, tuple[int, str]] | None = None
) -> Document:
    """Parse one YAML document into located nodes.

    Raises YamlLimitError when the text is too large, not YAML, uses unsupported
    features (custom tags, several documents) or exceeds the expansion budget.
    Duplicate keys are reported as problems; the first occurrence is kept.
    ``entry_limits`` maps a mapping's path (``jobs``) to its most entries and the error
    message: composing stops there, so 10,000 jobs cost no more than the limit.
    """
    size = len(text)
    if isinstance(text, str) and size * 4 > MAX_FILE_BYTES and size <= MAX_FILE_BYTES:
        size = len(text.encode("utf-8", "surrogatepass"))  # only near the limit: a copy
    if size > MAX_FILE_BYTES:
        raise YamlLimitError(
            f"the file is {size:,} bytes; the limit is {MAX_FILE_BYTES:,} bytes (1 MiB)"
        )
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise YamlLimitError(
                f"the file is not UTF-8 text ({exc.reason} at byte {exc.start})"
            ) from None
    return _Composer(text, entry_limits or {}).compose()


def to_plain(node: YNode) -> Any:
    """The Python value of a node: dicts, lists and scalars (aliases are copied here,
    which is safe because the expanded size was bounded while composing)."""
    if isinstance(node, YScalar):
        return node.value
    if isinstance(node, YSeq):
        return [to_plain(item) for item in node.items]
    assert isinstance(node, YMap)
    return {key: to_plain(entry.value) for key, entry in node.entries.items()}


def walk_paths(node: YNode, path: str) -> Iterator[tuple[str, YScalar]]:
    """Every scalar below ``node`` with its path."""
    if isinstance(node, YScalar):
        yield path, node
    elif isinstance(node, YSeq):
        for i, item in enumerate(node.items):
            yield from walk_paths(item, f"{path}[{i}]")
    elif isinstance(node, YMap):
        for key, entry in node.entries.items():
            yield from walk_paths(entry.value, f"{path}.{key}" if path else key)


class _Composer:
    def __init__(self, text: str, entry_limits: Mapping[str, tuple[int, str]]) -> None:
        self._parser: Any = _Parser(text)
        self._limits = entry_limits
        self._anchors: dict[str, YNode] = {}
        self._total = 0
        self._problems: list[Problem] = []
        self._heights: dict[int, int] = {}  # id of a list or mapping: the levels it holds

    def compose(self) -> Document:
        try:
            return self._compose()
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            where = (mark.line + 1, mark.column + 1) if mark else (1, 1)
            what = " ".join(p for p in (exc.context, exc.problem) if p) or "invalid YAML"
            raise YamlLimitError(f"invalid YAML: {what}", *where) from None
        except yaml.YAMLError as exc:
            raise YamlLimitError(f"invalid YAML: {exc}") from None
        finally:
            dispose = getattr(self._parser, "dispose", None)
            if dispose is not None:
                dispose()

    def _compose(self) -> Document:
        parser = self._parser
        parser.get_event()  # StreamStart
        if parser.check_event(yaml.StreamEndEvent):
            raise YamlLimitError("the workflow file is empty")
        parser.get_event()  # DocumentStart
        root = self._node("", 0)
        parser.get_event()  # DocumentEnd
        if not parser.check_event(yaml.StreamEndEvent):
            event = parser.peek_event()
            raise YamlLimitError(
                "a workflow file holds exactly one YAML document (found a second '---')",
                event.start_mark.line + 1,
                event.start_mark.column + 1,
            )
        return Document(root, self._problems)

    def _check_depth(self, levels: int, line: int, column: int, path: str) -> None:
        if levels > MAX_DEPTH:
            raise YamlLimitError(
                f"maximum object depth exceeded: lists and mappings nest at most {MAX_DEPTH} "
                "levels deep (GitHub's limit)",
                line,
                column,
                path,
            )

    def _count(self, size: int, line: int, column: int) -> None:
        self._total += size
        if self._total > MAX_NODES:
            raise YamlLimitError(
                f"the document expands to more than {MAX_NODES:,} values "
                "(aliases included); refusing to load it",
                line,
                column,
            )

    def _node(self, path: str, depth: int) -> YNode:
        """The node of the next event; ``depth`` counts the lists and mappings around it."""
        event = self._parser.get_event()
        line, column = event.start_mark.line + 1, event.start_mark.column + 1
        if isinstance(event, yaml.AliasEvent):
            target = self._anchors.get(str(event.anchor))
            if target is None:
                raise YamlLimitError(f"unknown alias '*{event.anchor}'", line, column)
            # The alias stands for its whole subtree, as deep here as where it was written.
            self._check_depth(depth + self._heights.get(id(target), 0), line, column, path)
            self._count(target.size, line, column)
            return target
        if isinstance(event, yaml.SequenceStartEvent | yaml.MappingStartEvent):
            self._check_depth(depth + 1, line, column, path)
        self._check_tag(event, line, column)
        node: YNode
        if isinstance(event, yaml.ScalarEvent):
            self._count(1, line, column)
            node = self._scalar(event, line, column, path)
        elif isinstance(event, yaml.SequenceStartEvent):
            self._count(1, line, column)
            node = self._sequence(path, depth, line, column)
        elif isinstance(event, yaml.MappingStartEvent):
            self._count(1, line, column)
            node = self._mapping(path, depth, line, column)
        else:  # pragma: no cover - the parser guarantees a node event here
            raise YamlLimitError(f"unexpected YAML event {type(event).__name__}", line, column)
        if event.anchor is not None:
            self._anchors[event.anchor] = node
        return node

    def _check_tag(self, event: Any, line: int, column: int) -> None:
        tag = event.tag
        if tag is None or tag == "!":
            return
        allowed = {
            yaml.ScalarEvent: ("str", "int", "float", "bool", "null"),
            yaml.SequenceStartEvent: ("seq",),
            yaml.MappingStartEvent: ("map",),
        }[type(event)]
        if not any(tag == _TAG + name for name in allowed):
            raise YamlLimitError(
                f"YAML tag '{tag.replace(_TAG, '!!')}' is not supported: remove it "
                "(workflow values are plain strings, numbers, booleans, lists and mappings)",
                line,
                column,
            )

    def _scalar(self, event: Any, line: int, column: int, path: str) -> YScalar:
        text: str = event.value
        style = event.style or ""
        tag = event.tag
        value: Any
        try:
            if tag is None and style == "" and event.implicit[0]:
                value = _resolve_plain(text)
            elif tag is None or tag in ("!", _TAG + "str"):
                value = text
            else:
                value = _resolve_plain(text)
        except ValueError as exc:
            raise YamlLimitError(str(exc), line, column, path) from None
        if tag is not None and tag not in ("!", _TAG + "str"):
            wanted = {"int": int, "float": float, "bool": bool, "null": type(None)}[
                tag[len(_TAG) :]
            ]
            if wanted is float and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
            if not isinstance(value, wanted) or (wanted is int and isinstance(value, bool)):
                raise YamlLimitError(f"'{text}' is not a valid {tag}", line, column)
        return YScalar(line, column, 1, value, text, style)

    def _sequence(self, path: str, depth: int, line: int, column: int) -> YSeq:
        node = YSeq(line, column, 1)
        index = height = 0
        while not self._parser.check_event(yaml.SequenceEndEvent):
            item = self._node(f"{path}[{index}]", depth + 1)
            node.items.append(item)
            node.size += item.size
            height = max(height, self._heights.get(id(item), 0))
            index += 1
        self._parser.get_event()
        self._heights[id(node)] = height + 1
        return node

    def _mapping(self, path: str, depth: int, line: int, column: int) -> YMap:
        node = YMap(line, column, 1)
        limit, message = self._limits.get(path, (0, ""))
        folded: dict[str, YScalar] = {}  # key.lower() -> the key first written so
        height = 0
        while not self._parser.check_event(yaml.MappingEndEvent):
            if limit and len(node.entries) >= limit:
                raise YamlLimitError(message, line, column, path)
            key_node = self._node(path, depth + 1)
            if not isinstance(key_node, YScalar):
                raise YamlLimitError(
                    "mapping keys must be plain strings, not lists or mappings",
                    key_node.line,
                    key_node.column,
                )
            key = key_node.text
            key_path = f"{path}.{key}" if path else key
            value = self._node(key_path, depth + 1)
            node.size += key_node.size + value.size
            height = max(height, self._heights.get(id(value), 0))
            problem = self._key_problem(key_node, folded)
            if problem is not None:
                self._problems.append(Problem(key_node.line, key_node.column, key_path, problem))
            else:
                folded[key.lower()] = key_node
                node.entries[key] = YEntry(key_node, value)
        self._parser.get_event()
        self._heights[id(node)] = height + 1
        return node

    @staticmethod
    def _key_problem(key_node: YScalar, folded: Mapping[str, YScalar]) -> str | None:
        """Why this key is left out of its mapping, or None when it is kept."""
        key = key_node.text
        if key == "<<" and key_node.plain:
            return (
                "YAML merge keys ('<<') are not supported (GitHub does not support "
                "them either): repeat the keys, or use an alias for a whole value"
            )
        if _INSERT.match(key.strip()):
            return (
                "`${{ insert }}` (inserting the keys of an expression's mapping here) is not "
                "supported: write the keys out in this mapping"
            )
        first = folded.get(key.lower())
        if first is None:
            return None
        where = f"line {first.line}, column {first.column}"
        if first.text == key:
            return f"duplicate key '{key}' (first defined at {where}): remove one of them"
        return (
            f"duplicate key '{key}': '{first.text}' is already defined at {where} and keys "
            "are compared ignoring case, as on GitHub: remove or rename one of them"
        )


def _resolve_plain(text: str) -> Any:
    """The value of a plain scalar; ValueError when it is a number out of range."""
    if _NULL.match(text):
        return None
    if _BOOL.match(text):
        return text.lower() == "true"
    if _INT.match(text):
        if text.startswith(("0o", "0x")):
            return _in_range(int(text, 0), text)
        # float() first: int() refuses strings of more than 4,300 digits.
        _in_range(float(text), text)
        sign, digits = ("-", text[1:]) if text[0] in "+-" else ("", text)
        return int(sign + (digits.lstrip("0") or "0"))
    if _FLOAT.match(text):
        lowered = text.lower()
        if lowered.endswith(".inf"):
            return -math.inf if lowered.startswith("-") else math.inf
        if lowered == ".nan":
            return math.nan
        return _in_range(float(text), text)
    return text


def _in_range(value: float, text: str) -> Any:
    """GitHub reads every number as a 64-bit float and refuses one that does not fit."""
    try:
        if math.isinf(float(value)):
            raise OverflowError
    except OverflowError:
        shown = text if len(text) <= 24 else f"{text[:20]}… ({len(text)} characters)"
        raise ValueError(
            f"the number {shown} is out of range: numbers are 64-bit floating point, at "
            "most about 1.8e308 (write a large value as a quoted string)"
        ) from None
    return value
