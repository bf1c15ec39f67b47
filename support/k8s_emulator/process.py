"""One container run as a local process: its own process group, merged stdout/stderr
into a ``LogFile``, exit noticed through a pidfd on the event loop (no helper threads)."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import signal
import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path

from support.k8s_emulator.logs import LogFile
from support.k8s_emulator.objects import now

# Output left in the pipe by a grandchild that escaped the process group is abandoned
# this long after the container's main process exited.
_DRAIN_GRACE_S = 2.0


class ContainerProcess:
    """A container's process. ``on_done`` fires once it has exited and its output is drained."""

    def __init__(
        self,
        *,
        argv: list[str],
        cwd: Path,
        env: Mapping[str, str],
        log: LogFile,
        on_done: Callable[[ContainerProcess], None],
    ) -> None:
        self.argv = argv
        self.cwd = cwd
        self.env = dict(env)
        self.log = log
        self._on_done = on_done
        self._loop = asyncio.get_running_loop()
        self.proc: subprocess.Popen[bytes] | None = None
        self.started_at: dt.datetime = now()
        self.finished_at: dt.datetime | None = None
        self.exit_code: int | None = None
        self.start_error: str | None = None
        self.forced_reason: str | None = None  # e.g. OOMKilled, set before a fault's SIGKILL
        self.done = False
        self._pipe_fd: int | None = None
        self._pid_fd: int | None = None
        self._exited = False

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    @property
    def alive(self) -> bool:
        return self.proc is not None and not self._exited

    def start(self) -> None:
        """Spawn the process; a failure to spawn becomes a StartError with exit code 128."""
        read_fd, write_fd = os.pipe()
        try:
            self.proc = subprocess.Popen(
                self.argv,
                cwd=self.cwd,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=write_fd,
                stderr=write_fd,
                start_new_session=True,
                close_fds=True,
            )
        except OSError as exc:
            os.close(read_fd)
            self.start_error = f"failed to start container process {self.argv[:1]}: {exc}"
            self.exit_code = 128
            self.finished_at = now()
            self._exited = True
            self.log.close()
            self._loop.call_soon(self._finish)
            return
        finally:
            os.close(write_fd)
        self.started_at = now()
        os.set_blocking(read_fd, False)
        self._pipe_fd = read_fd
        self._loop.add_reader(read_fd, self._on_output)
        try:
            self._pid_fd = os.pidfd_open(self.proc.pid)
            self._loop.add_reader(self._pid_fd, self._on_exit)
        except (AttributeError, OSError):  # no pidfd: poll instead
            self._loop.call_later(0.05, self._poll_exit)

    def signal(self, sig: int) -> None:
        """Signal the whole process group, as a container runtime does."""
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, sig)

    def _on_output(self) -> None:
        assert self._pipe_fd is not None
        try:
            data = os.read(self._pipe_fd, 65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if data:
            self.log.append(data)
            return
        self._close_pipe()

    def _close_pipe(self) -> None:
        if self._pipe_fd is None:
            return
        self._loop.remove_reader(self._pipe_fd)
        os.close(self._pipe_fd)
        self._pipe_fd = None
        self.log.close()
        self._finish()

    def _poll_exit(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self._loop.call_later(0.05, self._poll_exit)
        else:
            self._on_exit()

    def _on_exit(self) -> None:
        assert self.proc is not None
        if self._pid_fd is not None:
            self._loop.remove_reader(self._pid_fd)
            os.close(self._pid_fd)
            self._pid_fd = None
        code = self.proc.wait()
        self.exit_code = 128 - code if code < 0 else code
        self.finished_at = now()
        self._exited = True
        # The container ends with its main process: leftovers in its group go too.
        self.signal(signal.SIGKILL)
        self._loop.call_later(_DRAIN_GRACE_S, self._close_pipe)
        self._finish()

    def _finish(self) -> None:
        if self.done or not self._exited or self._pipe_fd is not None:
            return
        self.done = True
        self._on_done(self)

    def close(self) -> None:
        """Release the pipe and pidfd (at shutdown, when nobody waits for the drain)."""
        if self._pid_fd is not None:
            self._loop.remove_reader(self._pid_fd)
            os.close(self._pid_fd)
            self._pid_fd = None
        if self._pipe_fd is not None:
            self._loop.remove_reader(self._pipe_fd)
            os.close(self._pipe_fd)
            self._pipe_fd = None
        self.log.close()

    def reason(self) -> str:
        """The terminated state's reason, as the kubelet reports it."""
        if self.forced_reason:
            return self.forced_reason
        if self.start_error:
            return "StartError"
        return "Completed" if self.exit_code == 0 else "Error"
