"""`conveyor` in a pseudo-terminal whose output is fed to a terminal emulator (pyte).

The emulator counts autowraps: a character drawn past the last column means the
program wrote a row wider than the terminal, which a real terminal wraps onto the next
row (and which then leaves stale lines behind when the program redraws in place).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path
from typing import Any

import pyte

ROOT = Path(__file__).resolve().parents[2]


class WrapCountingScreen(pyte.HistoryScreen):
    """A screen with scrollback that counts rows the program let the terminal wrap."""

    def __init__(self, columns: int, lines: int) -> None:
        super().__init__(columns, lines, history=100_000, ratio=0.5)
        self.wraps = 0
        self.wrapped_text: list[str] = []

    def draw(self, data: str) -> None:
        for char in data:
            if self.cursor.x >= self.columns and pyte.modes.DECAWM in self.mode:
                self.wraps += 1
                self.wrapped_text.append(self.line_text(self.cursor.y))
            super().draw(char)

    def resize(self, lines: int | None = None, columns: int | None = None) -> None:
        """As a terminal window shrinks: rows above go, and the cursor stays on its row
        of text (pyte would leave it below the new bottom). A terminal may keep the
        rows it drops in its scrollback; pyte drops them: the view drawn before a resize
        is no copy the program left behind."""
        dropped = max(0, self.lines - (lines or self.lines))  # pyte drops them at the top
        super().resize(lines, columns)
        self.cursor.y = min(max(0, self.cursor.y - dropped), self.lines - 1)
        self.cursor.x = min(self.cursor.x, self.columns)

    def line_text(self, y: int) -> str:
        row = self.buffer[y]
        return "".join(row[x].data for x in range(self.columns)).rstrip()

    def history_lines(self) -> list[str]:
        return ["".join(line[x].data for x in range(self.columns)).rstrip()
                for line in self.history.top]

    def all_lines(self) -> list[str]:
        """Scrollback, then the screen: everything the user can scroll through."""
        return [*self.history_lines(), *(line.rstrip() for line in self.display)]


def set_size(fd: int, columns: int, lines: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", lines, columns, 0, 0))


class Terminal:
    """``conveyor ARGS`` on a pty of ``columns`` x ``lines``, its output on a pyte screen."""

    def __init__(self, args: list[str], columns: int, lines: int,
                 env: dict[str, str] | None = None) -> None:
        self.screen = WrapCountingScreen(columns, lines)
        self.stream = pyte.ByteStream(self.screen)
        self.raw = b""
        self.fed = 0  # how much of ``raw`` the screen has seen
        master, slave = os.openpty()
        set_size(slave, columns, lines)
        environment = {**os.environ, "PYTHONUNBUFFERED": "1", "TERM": "xterm-256color",
                       **(env or {})}
        for name in ("COLUMNS", "LINES", "CONVEYOR_DATABASE_URL", "NO_COLOR", "FORCE_COLOR",
                     "TTY_COMPATIBLE", "TTY_INTERACTIVE"):
            environment.pop(name, None)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "cli.main", *args], cwd=ROOT, env=environment,
            stdin=slave, stdout=slave, stderr=slave, start_new_session=True,
        )
        os.close(slave)
        self.master = master

    def __enter__(self) -> Terminal:
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        os.close(self.master)

    def plain_output(self) -> str:
        """Everything the program wrote, without its escape sequences."""
        return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", self.raw.decode(errors="replace"))

    def resize_pty(self, columns: int, lines: int) -> int:
        """The window's new size as the program sees it (it re-measures the terminal at
        every refresh; it needs no SIGWINCH). Returns the output offset at that moment.

        The screen is resized by :meth:`resize_screen_at_frame`: a redraw the program
        was writing as the window changed is laid out for the old size, as on any
        terminal; the test resizes its screen between two redraws instead.
        """
        set_size(self.master, columns, lines)
        return len(self.raw)

    def resize_screen_at_frame(self, columns: int, lines: int, text_at: int,
                               start: int) -> None:
        """Resize the screen just before the redraw whose first text is at offset
        ``text_at``: at the cursor movement that opens it (not before ``start``)."""
        offset = text_at
        opening = re.compile(rb"(?:\r|\x1b\[[0-9;?]*[A-Za-z])\Z")
        while (found := opening.search(self.raw, max(start, offset - 32), offset)) is not None:
            offset = found.start()
        self.feed_to(offset)
        self.screen.resize(lines, columns)

    def read_until(self, needle: bytes, count: int = 1, start: int = 0,
                   timeout: float = 120) -> None:
        """Read until ``needle`` has appeared ``count`` times in the output from offset
        ``start`` on (the screen is not fed: see :meth:`read_until_match`)."""
        deadline = time.monotonic() + timeout
        while self.raw.count(needle, start) < count:
            if not self._read(deadline):
                raise AssertionError(f"{needle!r} never appeared; output ends with "
                                     f"{self.raw[-3000:]!r}")

    def read_until_match(self, pattern: re.Pattern[bytes], start: int = 0,
                         timeout: float = 120) -> None:
        """Read until ``pattern`` matches the output from offset ``start`` on, and feed
        the screen up to the match's end: what a user would see at that moment (the
        output read past it may end in the middle of the next redraw)."""
        deadline = time.monotonic() + timeout
        while (match := pattern.search(self.raw, start)) is None:
            if not self._read(deadline):
                raise AssertionError(f"{pattern.pattern!r} never matched; output ends with "
                                     f"{self.raw[-3000:]!r}")
        self.feed_to(match.end())

    def feed_to(self, offset: int) -> None:
        self.stream.feed(self.raw[self.fed:offset])
        self.fed = max(self.fed, offset)

    def read_to_end(self, timeout: float = 120) -> int:
        deadline = time.monotonic() + timeout
        while self._read(deadline):
            pass
        self.feed_to(len(self.raw))
        return self.proc.wait(timeout=max(1.0, deadline - time.monotonic()))

    def interrupt(self) -> None:
        """Ctrl-C as a terminal sends it: SIGINT to the foreground process group."""
        with contextlib.suppress(ProcessLookupError):  # (it may have just finished)
            os.killpg(self.proc.pid, signal.SIGINT)

    def pump(self, timeout: float) -> None:
        """Read what the program wrote within ``timeout`` seconds, if anything."""
        ready, _, _ = select.select([self.master], [], [], timeout)
        if ready:
            with contextlib.suppress(OSError):
                self.raw += os.read(self.master, 65536)

    def _read(self, deadline: float) -> bool:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"timed out; output ends with {self.raw[-3000:]!r}")
        ready, _, _ = select.select([self.master], [], [], remaining)
        if not ready:
            return True
        try:
            chunk = os.read(self.master, 65536)
        except OSError:  # EIO: every writer closed the slave side
            return False
        if not chunk:
            return False
        self.raw += chunk
        return True
