"""Following a build from a client: WatchBuild for status, StreamBuildLogs for lines.

Two named threads own the two server streams; the caller's thread waits for both to
end (they end by themselves when the build is terminal and every line was sent).

On a terminal the build is shown as a rich ``Live`` region under the scrolling log
lines: rich redraws it in place, crops it to the terminal and re-measures the terminal
at every refresh (so resizing works); hand-written cursor movement could not know how
many rows a wrapped line took. Elsewhere (a pipe, a file, CI) one plain line is printed
per state change.
"""

from __future__ import annotations

import functools
import sys
import threading
import time
import zlib
from collections.abc import Callable, Iterable
from typing import Protocol, TextIO

import grpc
from rich.console import (
    COLOR_SYSTEMS,
    Console,
    ConsoleOptions,
    Group,
    RenderableType,
    RenderResult,
)
from rich.live import Live
from rich.segment import Segment, Segments
from rich.style import Style
from rich.text import Text

from cli.view import (
    build_status,
    job_status,
    live_rows,
    plain_build_line,
    plain_job_line,
    prefix,
    prefix_width,
    shown_text,
)
from conveyor.v1 import common_pb2, pipeline_pb2, pipeline_pb2_grpc

# Log prefixes take a colour by job so that interleaved matrix legs are told apart.
_PREFIX_STYLES = ("cyan", "magenta", "blue", "green", "yellow", "bright_cyan",
                  "bright_magenta", "bright_blue")


def view_height(terminal_lines: int) -> int:
    """Rows the live view may take: two thirds of the terminal, so that log lines keep
    some room above it, and never the whole terminal (rich could not redraw in place)."""
    return max(1, min(terminal_lines - 1, max(3, terminal_lines * 2 // 3)))


class _Display(Protocol):
    def start(self) -> None: ...
    def stop(self) -> None: ...
    def build_changed(self, build: common_pb2.Build) -> None: ...
    def log_lines(self, lines: list[tuple[str, str]], width: int) -> None: ...


class PlainDisplay:
    """One readable line per state change; log lines as ``key | text``."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self._seen: dict[str, str] = {}
        self._build_seen = ""

    def start(self) -> None:
        pass

    def stop(self) -> None:
        self.out.flush()

    def build_changed(self, build: common_pb2.Build) -> None:
        now = time.time()
        for job in build.jobs:
            status = job_status(job)
            before = self._seen.get(job.key)
            self._seen[job.key] = status
            # A job's first state (PENDING, waiting for its needs) is not a change.
            if before != status and not (before is None and status == "PENDING"):
                self.out.write(plain_job_line(job, now) + "\n")
        status = build_status(build)
        if status != self._build_seen:
            self._build_seen = status
            self.out.write(plain_build_line(build, now) + "\n")
        self.out.flush()

    def log_lines(self, lines: list[tuple[str, str]], width: int) -> None:
        self.out.write("".join(f"{prefix(key, width)}{text}\n" for key, text in lines))
        self.out.flush()


class _Unseen:
    """The display once stdout's reader has gone (`| head`): following goes on, shown to
    no one, until the command stops it (see ``BuildFollower.reader_gone``)."""

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass

    def build_changed(self, build: common_pb2.Build) -> None:
        pass

    def log_lines(self, lines: list[tuple[str, str]], width: int) -> None:
        pass


class _LiveView:
    """The renderable rich's Live asks for at every refresh: sized at render time."""

    def __init__(self, build: Callable[[], common_pb2.Build]) -> None:
        self._build = build

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        rows = live_rows(self._build(), options.max_width, view_height(options.size.height),
                         time.time())
        yield Group(*rows)


class LiveDisplay:
    def __init__(self, out: TextIO, build: Callable[[], common_pb2.Build]) -> None:
        # No markup, emoji or highlighting: job names and log lines are shown as written.
        self.console = Console(file=out, markup=False, emoji=False, highlight=False)
        self.live = Live(
            _LiveView(build), console=self.console, auto_refresh=True, refresh_per_second=8,
            transient=False, vertical_overflow="crop",
            # What else writes to the terminal meanwhile (warnings, the Ctrl-C notice)
            # goes above the view instead of through it; a redirected stderr keeps its file.
            redirect_stdout=True, redirect_stderr=_isatty(sys.stderr),
        )
        self._prefixes: dict[tuple[str, int], str] = {}

    def start(self) -> None:
        self.live.start()

    def stop(self) -> None:
        self.live.stop()

    def build_changed(self, build: common_pb2.Build) -> None:
        pass  # the next refresh (at most 1/8 s away) shows it

    def log_lines(self, lines: list[tuple[str, str]], width: int) -> None:
        columns = self.console.width
        parts: list[RenderableType] = []
        plain: list[str] = []
        for key, line in lines:
            if (line.isascii() and line.isprintable() and _plain(key)
                    and max(len(key), width) + 3 + len(line) <= columns):
                # The common line, as is: laying it out as rich Text costs ~0.2 ms a line,
                # which made a chatty job's log several times slower to show than piped.
                plain.append(f"{self._styled_prefix(key, width)}{line}\n")
                continue
            if plain:
                parts.append(Segments([Segment("".join(plain))]))
                plain = []
            # Colours, tabs, wide characters, long lines: rich decodes the colours, drops
            # other control sequences and folds the line to the terminal's width.
            text = Text(prefix(key, width), style=_prefix_style(key), overflow="fold")
            text.append_text(Text.from_ansi(line, overflow="fold"))
            parts.append(text)
        if plain:
            parts.append(Segments([Segment("".join(plain))]))
        # crop=False: the plain lines fit (checked above) and carry their own colours.
        self.console.print(Group(*parts), crop=False)

    def _styled_prefix(self, key: str, width: int) -> str:
        styled = self._prefixes.get((key, width))
        if styled is None:
            head = prefix(key, width)
            system = self.console.color_system
            styled = head if system is None or self.console.no_color else (
                _prefix_style(key).render(head, color_system=COLOR_SYSTEMS[system]))
            self._prefixes[(key, width)] = styled
        return styled


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


@functools.lru_cache(maxsize=1024)
def _plain(key: str) -> bool:
    return key.isascii() and key.isprintable()


@functools.lru_cache(maxsize=1024)
def _prefix_style(key: str) -> Style:
    return Style.parse(_PREFIX_STYLES[zlib.crc32(key.encode()) % len(_PREFIX_STYLES)])


class BuildFollower:
    def __init__(
        self,
        pipelines: pipeline_pb2_grpc.PipelineServiceStub,
        build: common_pb2.Build,
        *,
        out: TextIO,
        live: bool,
        show_logs: bool = True,
        keys: Iterable[str] = (),
    ) -> None:
        self.pipelines = pipelines
        self.build = build
        self.show_logs = show_logs
        self._lock = threading.Lock()
        # Every job key known so far (the plan's, the build's, the log's): log prefixes
        # are padded to the longest, from the first line on.
        self._keys = set(keys) | {job.key for job in build.jobs}
        self.display: _Display = (LiveDisplay(out, lambda: self.build) if live
                                  else PlainDisplay(out))
        self.errors: list[str] = []
        # Set when writing found the output's reader gone: the command decides what that
        # means (`run` cancels its build, `trigger --follow` leaves it) and exits 141.
        self.reader_gone = threading.Event()
        self._threads = [
            threading.Thread(target=self._watch, name="follow-watch", daemon=True),
            threading.Thread(target=self._logs, name="follow-logs", daemon=True),
        ]
        self._calls: list[grpc.Call] = []

    def run(self, tick: Callable[[], bool] | None = None) -> common_pb2.Build:
        """Follow until the build is terminal and its log drained. ``tick`` is called on
        this thread a few times a second; it returns True to stop following early."""
        self.display.start()
        try:
            for t in self._threads:
                t.start()
            while any(t.is_alive() for t in self._threads):
                for t in self._threads:
                    t.join(0.1)
                if tick is not None and tick():
                    break
        finally:
            self.close()
            self._show(self.display.stop)
        return self.build

    def close(self) -> None:
        for call in self._calls:
            call.cancel()
        for t in self._threads:
            if t.is_alive() and t is not threading.current_thread():
                t.join(2)

    def _show(self, show: Callable[[], None]) -> None:
        """Call the display; a reader gone ends the showing, not the thread: a thread
        dying of it would print a traceback, and its stream would stop while the other
        went on."""
        try:
            show()
        except BrokenPipeError:
            self.display = _Unseen()
            self.reader_gone.set()

    # -- streams -----------------------------------------------------------------------
    def _watch(self) -> None:
        call = self.pipelines.WatchBuild(pipeline_pb2.WatchBuildRequest(build_id=self.build.id))
        self._calls.append(call)
        try:
            for message in call:
                with self._lock:
                    self.build = message.build
                    self._keys.update(job.key for job in message.build.jobs)
                    self._show(functools.partial(self.display.build_changed, self.build))
        except grpc.RpcError as exc:
            if exc.code() != grpc.StatusCode.CANCELLED:
                self.errors.append(f"watch: {exc.details()}")

    def _logs(self) -> None:
        request = pipeline_pb2.StreamBuildLogsRequest(build_id=self.build.id, follow=True)
        call = self.pipelines.StreamBuildLogs(request)
        self._calls.append(call)
        try:
            for message in call:
                if not self.show_logs or not message.lines:
                    continue
                with self._lock:
                    self._keys.update(line.job_key for line in message.lines)
                    self._show(functools.partial(
                        self.display.log_lines,
                        [(line.job_key, shown_text(line)) for line in message.lines],
                        prefix_width(self._keys)))
        except grpc.RpcError as exc:
            if exc.code() != grpc.StatusCode.CANCELLED:
                self.errors.append(f"logs: {exc.details()}")
