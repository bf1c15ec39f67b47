"""Container logs: written as the kubelet's CRI files (``<time> <F|P> <text>``) and read
back for ``/log`` with follow, timestamps, sinceTime, tailLines and limitBytes."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from support.k8s_emulator.objects import now, parse_time, rfc3339_nano

# A line longer than this is cut into partial records, as container runtimes do.
_MAX_LINE = 16 * 1024


class LogFile:
    """One container's log. Written only on the event loop; readers wait on ``changed``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open(path, "ab", buffering=0)  # noqa: SIM115 - open for the container's life
        self._pending = b""
        self.closed = False
        self.changed = asyncio.Event()

    def _notify(self) -> None:
        self.changed.set()
        self.changed = asyncio.Event()

    def append(self, data: bytes) -> None:
        """Add raw output; complete lines are recorded now, a trailing fragment waits."""
        data = self._pending + data
        lines = data.split(b"\n")
        self._pending = lines.pop()
        records = [(line, b"F") for line in lines]
        while len(self._pending) > _MAX_LINE:
            records.append((self._pending[:_MAX_LINE], b"P"))
            self._pending = self._pending[_MAX_LINE:]
        self._write(records)

    def close(self) -> None:
        """End of output: a trailing fragment becomes a partial record."""
        if self.closed:
            return
        if self._pending:
            self._write([(self._pending, b"P")])
            self._pending = b""
        self._fh.close()
        self.closed = True
        self._notify()

    def _write(self, records: list[tuple[bytes, bytes]]) -> None:
        if not records:
            return
        stamp = rfc3339_nano(now()).encode()
        self._fh.write(
            b"".join(stamp + b" " + flag + b" " + text + b"\n" for text, flag in records)
        )
        self._notify()


@dataclass(frozen=True)
class LogOptions:
    """The query parameters of ``/log`` the emulator honours."""

    follow: bool = False
    timestamps: bool = False
    since: dt.datetime | None = None
    tail_lines: int | None = None
    limit_bytes: int | None = None


def _records(chunk: bytes) -> list[tuple[bytes, bytes, bytes]]:
    out = []
    for raw in chunk.split(b"\n"):
        if not raw:
            continue
        stamp, flag, text = raw.split(b" ", 2) if raw.count(b" ") >= 2 else (raw, b"F", b"")
        out.append((stamp, flag, text))
    return out


def _render(records: list[tuple[bytes, bytes, bytes]], opts: LogOptions) -> bytes:
    parts = []
    for stamp, flag, text in records:
        if opts.since is not None and parse_time(stamp.decode()) < opts.since:
            continue
        prefix = stamp + b" " if opts.timestamps else b""
        parts.append(prefix + text + (b"\n" if flag == b"F" else b""))
    return b"".join(parts)


async def stream_log(
    log: LogFile,
    opts: LogOptions,
    write: Callable[[bytes], Awaitable[None]],
    stopping: Callable[[], bool],
) -> None:
    """Send the log through ``write``; with follow, until the log is closed and drained."""
    offset = 0
    first = True
    remaining = opts.limit_bytes
    while True:
        changed = log.changed
        with open(log.path, "rb") as fh:
            fh.seek(offset)
            chunk = fh.read()
        cut = chunk.rfind(b"\n") + 1
        offset += cut
        records = _records(chunk[:cut])
        if first and opts.tail_lines is not None:
            records = records[-opts.tail_lines :] if opts.tail_lines > 0 else []
        first = False
        out = _render(records, opts)
        if remaining is not None:
            out = out[:remaining]
            remaining -= len(out)
        if out:
            await write(out)
        if remaining == 0 or not opts.follow or stopping():
            return
        if log.closed and not cut:
            return
        if not log.closed:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), timeout=1.0)
