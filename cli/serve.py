"""`conveyor serve` and `conveyor db migrate`: the process around a `runtime.Runtime`.

`serve` owns what belongs to the process: signals, exit codes, one-line start-up errors,
and the shutdown bound (CONVEYOR_DRAIN_S from SIGTERM to exit, in every phase).
"""

from __future__ import annotations

import os

# gRPC's C core prints its own errors to stderr, in its own format: a taken port was an
# `E1203 … add_port.cc:83] Failed to add port…` line before our one clear line, and it
# would break a --log-format json stream. What fails reaches us as an exception, which
# the server reports; GRPC_VERBOSITY (read when grpc starts, so set before it is
# imported) still turns the core's log on for whoever asks, as its messages suggest.
os.environ.setdefault("GRPC_VERBOSITY", "NONE")

import argparse
import logging
import signal
import sys
import threading
import time
from dataclasses import replace
from typing import Any

import pykka

from observability.logs import LogFormatError, configure_logging
from runtime import (
    DEFAULT_METRICS_LISTEN,
    Config,
    ConfigError,
    ListenFailed,
    Runtime,
    StartCancelled,
    StartFailed,
    open_store,
)
from runtime_config import LISTEN, forget_secrets

log = logging.getLogger("conveyor.runtime")

ROLE_HELP = ("what this process runs (CONVEYOR_ROLE; default: all): all = API and executor "
             "in one process; pipeline = the API only (needs CONVEYOR_EXECUTOR_ADDR); "
             "executor = the engine that runs jobs")
DATABASE_HELP = ("sqlite:///PATH or postgresql://USER@HOST:PORT/DBNAME "
                 "(CONVEYOR_DATABASE_URL; default: sqlite:///~/.conveyor/conveyor.db)")


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="conveyor serve",
                                description="Run a Conveyor server (configured by CONVEYOR_* "
                                            "environment variables; flags override them). "
                                            "On SIGTERM it drains and stops within "
                                            "CONVEYOR_DRAIN_S (default 60s).")
    p.add_argument("--role", choices=["all", "pipeline", "executor"], help=ROLE_HELP)
    p.add_argument("--listen", help="host:port to serve gRPC on "
                                    f"(CONVEYOR_LISTEN; default: {LISTEN})")
    p.add_argument("--database-url", help=DATABASE_HELP)
    p.add_argument("--amqp-url", dest="queue_url",
                   help="the build queue (CONVEYOR_AMQP_URL; default: memory://, in-process)")
    p.add_argument("--executor-addr", help="CONVEYOR_EXECUTOR_ADDR (pipeline role)")
    p.add_argument("--migrate", action="store_true",
                   help="apply pending database migrations before serving (SQLite always "
                        "does; on PostgreSQL, without it, a schema that is missing or "
                        "behind refuses to start: run `conveyor db migrate`)")
    p.add_argument("--log-level", default="INFO",
                   help="DEBUG, INFO, WARNING or ERROR (default: INFO)")
    p.add_argument("--log-format", choices=["text", "json"],
                   help="CONVEYOR_LOG_FORMAT: text (default) or json, one object per line")
    args = p.parse_args(argv)
    try:
        configure_logging(args.log_level,
                          args.log_format or os.environ.get("CONVEYOR_LOG_FORMAT") or "text")
    except (LogFormatError, ValueError) as exc:
        print(f"conveyor serve: {exc}", file=sys.stderr)
        return 2
    try:
        config = Config.from_env(role=args.role, listen=args.listen,
                                 database_url=args.database_url, queue_url=args.queue_url,
                                 executor_addr=args.executor_addr,
                                 migrate_on_start=True if args.migrate else None)
    except ConfigError as exc:
        print(f"conveyor serve: {exc}", file=sys.stderr)
        return 2
    # Read once: what the server starts later must not inherit the secrets, and the
    # files it creates (database, work directories) are its own.
    forget_secrets(os.environ)
    os.umask(0o077)
    return serve(config)


def db_main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(
        prog="conveyor db",
        description="Database administration. PostgreSQL needs `conveyor db migrate` once "
                    "per release, before `conveyor serve`; SQLite databases migrate "
                    "themselves.")
    p.add_argument("action", choices=["migrate"],
                   help="migrate: create the schema or bring it up to date; idempotent, and "
                        "safe beside running servers (concurrent runs wait on each other)")
    p.add_argument("--database-url", help=DATABASE_HELP)
    args = p.parse_args(argv)
    import store

    try:
        config = Config.from_env(database_url=args.database_url)
        applied = open_store(config, migrate=True)
    except ConfigError as exc:
        print(f"conveyor db {args.action}: {exc}", file=sys.stderr)
        return 2
    except (StartFailed, StartCancelled) as exc:
        print(f"conveyor db {args.action}: {exc}", file=sys.stderr)
        return 1
    store.close_database()
    print(f"applied migrations: {applied}" if applied else "database is up to date")
    return 0


EXIT_WATCHDOG = 1


class _Watchdog:
    """The shutdown bound's backstop, armed when stopping begins. At the deadline the
    process ends: quietly with its own exit code when the runtime had stopped and only
    the interpreter's teardown was left; else (a driver call that ignores interrupts, a
    thread that will not join) saying so, with exit code 1."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.exit_code: int | None = None  # set once the runtime has stopped
        self._thread: threading.Thread | None = None

    def arm(self) -> None:
        self.runtime.request_stop()
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="shutdown-watchdog",
                                            daemon=True)
            self._thread.start()

    def _run(self) -> None:
        deadline = self.runtime.deadline
        assert deadline is not None
        time.sleep(max(0.0, deadline - time.monotonic()))
        if self.exit_code is not None:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(self.exit_code)
        print(f"conveyor serve: shutdown took longer than CONVEYOR_DRAIN_S="
              f"{self.runtime.config.drain_s:g}s; exiting now", file=sys.stderr, flush=True)
        os._exit(EXIT_WATCHDOG)


def install_signal_handlers(runtime: Runtime, watchdog: _Watchdog) -> None:
    """SIGTERM/SIGINT: graceful stop, bounded by CONVEYOR_DRAIN_S (a second one ends the
    process at once); SIGUSR1: dump every thread's stack to the log."""
    received: list[int] = []

    def graceful(signum: int, _frame: Any) -> None:
        name = signal.Signals(signum).name
        if received:
            print(f"conveyor serve: second {name}: exiting now", file=sys.stderr, flush=True)
            os._exit(128 + signum)
        received.append(signum)
        log.info("received %s: shutting down gracefully, within %gs", name,
                 runtime.config.drain_s)
        watchdog.arm()

    signal.signal(signal.SIGTERM, graceful)
    signal.signal(signal.SIGINT, graceful)
    signal.signal(signal.SIGUSR1, lambda *_: pykka.debug.log_thread_tracebacks())


def serve(config: Config) -> int:
    """Run until SIGTERM; returns the process exit code (non-zero after escalation).

    Start-up failures are one line on stderr: 2 for configuration, 1 otherwise.
    """
    import pykka.debug  # noqa: F401  (SIGUSR1 handler)

    if not config.metrics_listen:
        config = replace(config, metrics_listen=DEFAULT_METRICS_LISTEN)
    runtime = Runtime(config)
    watchdog = _Watchdog(runtime)
    install_signal_handlers(runtime, watchdog)
    code = EXIT_WATCHDOG
    try:
        code = _serve(runtime)
        return code
    finally:
        watchdog.arm()  # whatever ended the run, stopping is bounded too
        runtime.stop()
        watchdog.exit_code = code


def _serve(runtime: Runtime) -> int:
    config = runtime.config
    try:
        runtime.start()
    except StartCancelled as exc:
        log.info("%s", exc)
        return 0
    except ConfigError as exc:
        print(f"conveyor serve: {exc}", file=sys.stderr)
        return 2
    except (ListenFailed, StartFailed) as exc:
        print(f"conveyor serve: {exc}", file=sys.stderr)
        return 1
    print(f"conveyor serving role {config.role} on {runtime.address}", flush=True)
    while not runtime.stopping.wait(0.5):
        if runtime.fatal.is_set():
            log.critical("fatal: %s", runtime.fatal_reason)
            return 70
    if config.runs_executor:
        runtime.drain(runtime.drain_budget())
    return 0
