"""Following a build from a client: WatchBuild for status, StreamBuildLogs for lines.

Two named threads own the two server streams; the caller's thread waits for both to
end (they end by themselves when the build is terminal and every line was sent).
"""

from __future__ import annotations

import shutil
import threading
import time
from typing import TextIO

import grpc

from cli.view import TableStyle, build_status, job_status, job_table, prefix, shown_text
from conveyor.v1 import common_pb2, pipeline_pb2, pipeline_pb2_grpc


class BuildFollower:
    def __init__(
        self,
        pipelines: pipeline_pb2_grpc.PipelineServiceStub,
        build: common_pb2.Build,
        *,
        out: TextIO,
        live: bool,
        show_logs: bool = True,
    ) -> None:
        self.pipelines = pipelines
        self.build = build
        self.out = out
        self.live = live
        self.show_logs = show_logs
        self._lock = threading.Lock()
        self._drawn = 0  # lines of the live table currently on screen
        self._seen_status: dict[str, str] = {}
        self.errors: list[str] = []
        self._threads = [
            threading.Thread(target=self._watch, name="follow-watch", daemon=True),
            threading.Thread(target=self._logs, name="follow-logs", daemon=True),
        ]
        self._calls: list[grpc.Call] = []

    def run(self) -> common_pb2.Build:
        for t in self._threads:
            t.start()
        try:
            while any(t.is_alive() for t in self._threads):
                for t in self._threads:
                    t.join(0.25)
                if self.live:
                    with self._lock:
                        self._redraw()  # durations tick while jobs run
        finally:
            self.close()
        with self._lock:
            if self.live:
                self._redraw()
        return self.build

    def close(self) -> None:
        for call in self._calls:
            call.cancel()
        for t in self._threads:
            if t is not threading.current_thread():
                t.join(2)

    # -- streams -----------------------------------------------------------------------
    def _watch(self) -> None:
        call = self.pipelines.WatchBuild(pipeline_pb2.WatchBuildRequest(build_id=self.build.id))
        self._calls.append(call)
        try:
            for message in call:
                with self._lock:
                    self.build = message.build
                    if self.live:
                        self._redraw()
                    else:
                        self._print_changes()
        except grpc.RpcError as exc:
            if exc.code() != grpc.StatusCode.CANCELLED:
                self.errors.append(f"watch: {exc.details()}")

    def _logs(self) -> None:
        request = pipeline_pb2.StreamBuildLogsRequest(build_id=self.build.id, follow=True)
        call = self.pipelines.StreamBuildLogs(request)
        self._calls.append(call)
        try:
            for message in call:
                if not self.show_logs:
                    continue
                with self._lock:
                    width = max((len(j.key) for j in self.build.jobs), default=8)
                    width = min(max(width, 8), 28)
                    text = "".join(
                        f"{prefix(line.job_key, width)}{shown_text(line)}\n"
                        for line in message.lines
                    )
                    self._write_above_table(text)
        except grpc.RpcError as exc:
            if exc.code() != grpc.StatusCode.CANCELLED:
                self.errors.append(f"logs: {exc.details()}")

    # -- output ------------------------------------------------------------------------
    def _write_above_table(self, text: str) -> None:
        if self.live:
            self._clear_table()
            self.out.write(text)
            self._draw_table()
        else:
            self.out.write(text)
        self.out.flush()

    def _clear_table(self) -> None:
        if self._drawn:
            self.out.write(f"\x1b[{self._drawn}F\x1b[J")
            self._drawn = 0

    def _draw_table(self) -> None:
        columns = shutil.get_terminal_size((100, 20)).columns
        lines = [line[: columns + 20] for line in job_table(self.build, TableStyle(colour=True),
                                                             time.time())]
        self.out.write("\x1b[2m" + "─" * min(columns, 60) + "\x1b[0m\n")
        self.out.write("\n".join(lines) + "\n")
        self._drawn = len(lines) + 1

    def _redraw(self) -> None:
        self._clear_table()
        self._draw_table()
        self.out.flush()

    def _print_changes(self) -> None:
        """Plain output: one line per status change (no cursor movement)."""
        for job in self.build.jobs:
            status = job_status(job)
            if self._seen_status.get(job.key) != status:
                self._seen_status[job.key] = status
                reason = f" ({job.reason})" if job.reason and status != "RUNNING" else ""
                self.out.write(f"[{job.key}] {status}{reason}\n")
        status = build_status(self.build)
        if self._seen_status.get("\0build") != status:
            self._seen_status["\0build"] = status
            reason = f" ({self.build.reason})" if self.build.reason else ""
            self.out.write(f"build #{self.build.number}: {status}{reason}\n")
        self.out.flush()

