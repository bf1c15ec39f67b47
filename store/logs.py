"""Job logs, stored as chunks: one row per batch of consecutive lines of a job.

A chunk is keyed by (job, first_line), so "from line N" finds the chunk holding N with
one index probe and reads on from there, and a chunk written twice is ignored.

A line that ends with ``\r`` (`workflow.markers.CONTINUED`) is a piece of a longer
line: ordinary lines never end with one (the readers strip it), so the mark costs no
column. Reads return it as ``LogLine.continued``. Reads are bounded by bytes as well as
by lines, and fetch chunks in pages sized by what the last page held.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import UTC
from typing import Any, Literal, NamedTuple

from peewee import chunked, fn

from store import fast
from store.db import backend, database, store_call, transaction, utcnow
from store.models import LogChunk
from store.records import LogChunkInit, LogLine

LogWriteMethod = Literal["insert", "copy"]

# bench/store_logs.py, 100k lines, local PostgreSQL 15 (lines/s, insert → copy):
# 200-line chunks 835k → 907k, 20-line 216k → 303k, 5-line 58k → 83k. COPY wins most
# where rows are small, which is when a busy log actor flushes often.
DEFAULT_POSTGRES_METHOD: LogWriteMethod = "copy"
_INSERT_BATCH = 500  # rows per INSERT: 5 parameters each stays far below SQLite's limit
_READ_PAGE = 200  # chunks fetched per query at most while collecting lines
_PAGE_BYTES = 4 << 20  # the content a page of chunks should hold, about
_LINE_OVERHEAD = 32  # bytes a read line costs besides its text (numbers, keys on the wire)


def _content(chunk: LogChunkInit, position: int) -> str:
    if chunk.first_line < 1:
        raise ValueError(
            f"log chunks[{position}] (job row {chunk.job_row_id}): first_line must be >= 1, "
            f"got {chunk.first_line}"
        )
    text = "\n".join(chunk.lines)
    if text.count("\n") != len(chunk.lines) - 1:
        raise ValueError(
            f"log chunks[{position}] (job row {chunk.job_row_id}, from line "
            f"{chunk.first_line}): a line contains a newline; split lines before storing"
        )
    # PostgreSQL text cannot hold NUL; keep both backends identical.
    return text.replace("\x00", "\ufffd") if "\x00" in text else text


def _rows(chunks: Sequence[LogChunkInit]) -> list[dict[str, Any]]:
    now = utcnow()
    return [
        {
            "job": chunk.job_row_id,
            "first_line": chunk.first_line,
            "line_count": len(chunk.lines),
            "content": _content(chunk, position),
            "created_at": now,
        }
        for position, chunk in enumerate(chunks)
        if chunk.lines
    ]


_COLUMNS = "job_id, first_line, line_count, content, created_at"


def _insert(rows: list[dict[str, Any]]) -> None:
    with transaction():
        for batch in chunked(rows, _INSERT_BATCH):
            params: list[Any] = []
            for row in batch:
                params += (row["job"], row["first_line"], row["line_count"], row["content"],
                           fast.naive(row["created_at"]))
            fast.execute(fast.insert_ignoring("log_chunks", _COLUMNS, len(batch), 5), params)


def _copy_field(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def _copy(rows: list[dict[str, Any]]) -> None:
    import psycopg2  # type: ignore[import-untyped]

    buffer = io.StringIO()
    for row in rows:
        created = row["created_at"].astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ")
        buffer.write(
            f"{row['job']}\t{row['first_line']}\t{row['line_count']}\t"
            f"{_copy_field(row['content'])}\t{created}\n"
        )
    buffer.seek(0)
    try:
        with transaction(), database.connection().cursor() as cursor:
            cursor.copy_expert(
                "COPY log_chunks (job_id, first_line, line_count, content, created_at) FROM STDIN",
                buffer,
            )
    except psycopg2.IntegrityError:
        # COPY has no ON CONFLICT: a batch repeating a stored chunk goes the slow way,
        # which skips the duplicates (or reports a missing job row as a Conflict).
        _insert(rows)


@store_call
def append_log_chunks(
    chunks: Sequence[LogChunkInit], *, method: LogWriteMethod | None = None
) -> None:
    """Store chunks of log lines in one transaction; chunks already stored are skipped.

    ``method`` "copy" (PostgreSQL's COPY FROM STDIN) or "insert" (multi-row INSERTs);
    None picks the faster for the backend. SQLite always inserts.
    """
    rows = _rows(chunks)
    if not rows:
        return
    chosen = method or (DEFAULT_POSTGRES_METHOD if backend() == "postgresql" else "insert")
    if chosen == "copy" and backend() == "postgresql":
        _copy(rows)
    elif chosen in ("copy", "insert"):
        _insert(rows)
    else:
        raise ValueError(f"log write method must be 'insert' or 'copy', got {chosen!r}")


def _page(job_row_id: int, after: int, size: int) -> list[tuple[int, int, str]]:
    """(first_line, line_count, content) of up to ``size`` chunks from after ``after``."""
    return list(
        LogChunk.select(LogChunk.first_line, LogChunk.line_count, LogChunk.content)
        .where((LogChunk.job == job_row_id) & (LogChunk.first_line > after))
        .order_by(LogChunk.first_line)
        .limit(size)
        .tuples()
        .iterator()
    )


class _Budget:
    def __init__(self, limit: int, max_bytes: int | None) -> None:
        self.lines = limit
        self.bytes = max_bytes if max_bytes is not None else -1

    def spend(self, text: str) -> bool:
        """Counts one line taken; whether there is room for another."""
        self.lines -= 1
        if self.bytes >= 0:
            size = len(text) if text.isascii() else len(text.encode("utf-8"))
            self.bytes -= size + _LINE_OVERHEAD
            return self.lines > 0 and self.bytes > 0
        return self.lines > 0


def _read_job(job_row_id: int, from_line: int, budget: _Budget, out: list[LogLine]) -> bool:
    """Appends the job's lines from ``from_line``; False once the budget is spent."""
    start = (
        LogChunk.select(fn.MAX(LogChunk.first_line))
        .where((LogChunk.job == job_row_id) & (LogChunk.first_line <= from_line))
        .scalar()
    )
    after = (start or from_line) - 1
    # A page is read whole and a chunk may hold 1 MiB (or, stored before chunks were
    # bounded, far more): start with one, then size pages by what the last one held.
    page_size = 1
    while True:
        page = _page(job_row_id, after, page_size)
        held = 0
        for first, count, content in page:
            held += len(content)
            if first + count <= from_line:
                continue  # the chunk before from_line's, when from_line is past its end
            lines = content.split("\n")
            for offset in range(max(0, from_line - first), count):
                text = lines[offset]
                if text.endswith("\r"):
                    out.append(LogLine(job_row_id, first + offset, text[:-1], True))
                else:
                    out.append(LogLine(job_row_id, first + offset, text))
                if not budget.spend(text):
                    return False
        if len(page) < page_size:
            return True
        after = page[-1][0]
        wanted = _PAGE_BYTES if budget.bytes < 0 else min(_PAGE_BYTES, budget.bytes)
        page_size = max(1, min(_READ_PAGE, page_size * wanted // max(held, 1)))


@store_call
def read_logs(job_row_ids: Sequence[int], from_line: int = 1, limit: int = 10_000,
              max_bytes: int | None = None) -> list[LogLine]:
    """Up to ``limit`` stored lines numbered >= ``from_line`` of the given job rows,
    ordered by (job row id, line number); with ``max_bytes``, they stop once their
    text (UTF-8, and a few bytes per line) reaches it, after at least one line."""
    if from_line < 1:
        raise ValueError(f"from_line must be >= 1, got {from_line}")
    if limit < 1:
        raise ValueError(f"limit must be >= 1, got {limit}")
    if max_bytes is not None and max_bytes < 1:
        raise ValueError(f"max_bytes must be >= 1, got {max_bytes}")
    out: list[LogLine] = []
    budget = _Budget(limit, max_bytes)
    for job_row_id in sorted(set(job_row_ids)):
        if not _read_job(job_row_id, from_line, budget, out):
            break
    return out


class LogExtent(NamedTuple):
    """How much of a job's log is stored."""

    lines: int  # the number of the last stored line (0: none)
    bytes: int  # UTF-8 bytes of the stored lines, a newline each
    last_line: str  # the text of the last stored line ("" when none)


@store_call
def log_extent(job_row_id: int) -> LogExtent:
    """What a LogActor needs to go on with a job's log that it did not start."""
    last = fast.execute(_LAST_CHUNK_CONTENT, (job_row_id,)).fetchone()
    if last is None:
        return LogExtent(0, 0, "")
    first, count, content = last
    size = fast.execute(_LOG_BYTES[backend()], (job_row_id,)).fetchone()[0]
    return LogExtent(int(first + count - 1), int(size or 0), content.rpartition("\n")[2])


@store_call
def log_line_count(job_row_id: int) -> int:
    """The number of the last stored line of the job row (0 when none): a re-attached
    log follower skips that many lines."""
    last = fast.execute(_LAST_CHUNK, (job_row_id,)).fetchone()
    return 0 if last is None else int(last[0] + last[1] - 1)


_LAST_CHUNK = (
    "SELECT first_line, line_count FROM log_chunks WHERE job_id = ? "
    "ORDER BY first_line DESC LIMIT 1"
)
_LAST_CHUNK_CONTENT = (
    "SELECT first_line, line_count, content FROM log_chunks WHERE job_id = ? "
    "ORDER BY first_line DESC LIMIT 1"
)
_LOG_BYTES = {
    "sqlite": "SELECT SUM(LENGTH(CAST(content AS BLOB)) + 1) FROM log_chunks "
              "WHERE job_id = ?",
    "postgresql": "SELECT SUM(OCTET_LENGTH(content) + 1) FROM log_chunks "
                  "WHERE job_id = ?",
}
