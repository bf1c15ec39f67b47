"""The database handle: opened from a URL, used by every store call through `store_call`.

Connection discipline: a store call checks a connection out of the pool for its own
work and returns it at once, so no actor or servicer holds one between calls and a
bounded pool serves any number of callers. Transient failures (PostgreSQL restarting,
the network dropping, SQLite writers colliding) are retried with backoff inside the call
for a bounded time; what is left escapes as a `StoreError`.
"""

from __future__ import annotations

import atexit
import functools
import logging
import math
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ParamSpec, TypeVar
from urllib.parse import parse_qsl, unquote, urlsplit

import peewee
import psycopg2  # type: ignore[import-untyped]
from playhouse.pool import MaxConnectionsExceeded, PooledPostgresqlDatabase, PooledSqliteDatabase
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_before_delay,
    stop_when_event_set,
    wait_exponential_jitter,
)

from store.errors import Conflict, StoreError, StoreUnavailable

log = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")

database = peewee.DatabaseProxy()
"""Every model binds to this proxy; `open_database` points it at the real database."""

DEFAULT_POOL = 8
# What a database call raises where the store does not translate it into StoreError
# (peewee's base class, which wraps the driver's): callers outside store/ catch this
# name and never import peewee.
DatabaseFailure = peewee.PeeweeException
DEFAULT_RETRY_S = 30.0
DEFAULT_STALE_S = 300
DEFAULT_POOL_WAIT_S = 30.0
DEFAULT_SQLITE_BUSY_MS = 5000
WAITING_LOG_EVERY_S = 5.0

# What a PostgreSQL server answers when it is up but will never accept these settings:
# retrying cannot help, so such a failure is reported at once instead of after the budget.
_PERMANENT_CONNECT_ERRORS = (
    "does not exist",  # the database or the role
    "authentication failed",
    "no pg_hba.conf entry",
    "permission denied",
)


class DatabaseConfigError(ValueError):
    """The database URL or a ``CONVEYOR_DB_*`` variable is malformed (names which)."""


@dataclass(frozen=True)
class RetryEvent:
    """One transient failure of a store call that is about to be retried."""

    operation: str
    attempt: int
    error: BaseException
    elapsed_s: float
    next_delay_s: float


@dataclass
class _Opened:
    backend: str  # "sqlite" | "postgresql"
    retry_s: float
    url: str  # redacted: fit for messages
    temp_dir: str | None = None


_opened: _Opened | None = None
_open_lock = threading.Lock()
_retry_listeners: list[Callable[[RetryEvent], None]] = []
# Set while a process shuts down: store calls stop retrying (and their backoff sleeps
# wake) so actors blocked in a retry loop can stop within the shutdown bound.
_interrupted = threading.Event()


def utcnow() -> datetime:
    """The current time as a timezone-aware UTC datetime (all stored times are UTC)."""
    return datetime.now(UTC)


def _redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return parts._replace(netloc=netloc).geturl()


def _int_param(params: dict[str, str], key: str, default: int, url: str) -> int:
    raw = params.pop(key, None)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise DatabaseConfigError(
            f"database URL {_redact(url)!r}: parameter {key}={raw!r} is not an integer"
        ) from None
    if value < 1:
        raise DatabaseConfigError(f"database URL {_redact(url)!r}: parameter {key} must be >= 1")
    return value


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise DatabaseConfigError(
            f"environment variable {name}={raw!r} is not an integer") from None
    if value < 1:
        raise DatabaseConfigError(f"environment variable {name} must be >= 1, got {value}")
    return value


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise DatabaseConfigError(
            f"environment variable {name}={raw!r} is not a number") from None
    if not math.isfinite(value) or value < 0:
        raise DatabaseConfigError(
            f"environment variable {name} must be a number of seconds >= 0, got {raw!r}")
    return value


def _open_sqlite(url: str, pool: int | None) -> tuple[peewee.Database, str | None]:
    rest = url[len("sqlite:///") :] if url.startswith("sqlite:///") else None
    if not rest:
        raise DatabaseConfigError(
            f"database URL {url!r}: expected sqlite:///relative/path.db, "
            "sqlite:////absolute/path.db or sqlite:///:memory:"
        )
    path, _, query = rest.partition("?")
    params = dict(parse_qsl(query))
    busy_ms = _int_param(params, "busy_timeout", DEFAULT_SQLITE_BUSY_MS, url)
    max_conn = pool or _int_param(params, "pool", 0, url) or 32
    if params:
        raise DatabaseConfigError(f"database URL {url!r}: unknown parameters {sorted(params)}")
    temp_dir = None
    if path == ":memory:":
        # SQLite's own :memory: database lives inside one connection, and every store
        # call takes its own connection from any thread: a private file keeps the same
        # WAL semantics as the embedded file database and disappears on close.
        temp_dir = tempfile.mkdtemp(prefix="conveyor-db-")
        path = os.path.join(temp_dir, "conveyor.db")
    else:
        parent = os.path.dirname(os.path.abspath(path))
        try:
            os.makedirs(parent, mode=0o700, exist_ok=True)
        except OSError as exc:
            raise StoreUnavailable(
                f"database URL {url!r}: cannot create the directory {parent}: "
                f"{exc.strerror or exc}"
            ) from None
        _owner_only(path)
    db = PooledSqliteDatabase(
        path,
        max_connections=max_conn,
        stale_timeout=DEFAULT_STALE_S,
        timeout=DEFAULT_POOL_WAIT_S,
        # A write transaction takes the write lock up front: a deferred one that reads
        # first cannot wait for the lock (SQLITE_BUSY_SNAPSHOT) and fails at once.
        lock_type="IMMEDIATE",
        pragmas={
            "journal_mode": "wal",
            "busy_timeout": busy_ms,
            "foreign_keys": 1,
            "synchronous": "normal",
        },
        check_same_thread=False,  # pooled connections move between threads
        autoconnect=False,
    )
    return db, temp_dir


def _owner_only(path: str) -> None:
    """Create the database file 0600 (SQLite gives its -wal and -shm files the same
    mode), or narrow one that exists: it holds every token's hash and every log."""
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
    for name in (path, f"{path}-wal", f"{path}-shm"):
        with suppress(FileNotFoundError):
            if os.stat(name).st_mode & 0o077:
                os.chmod(name, 0o600)


def _open_postgres(url: str, pool: int | None) -> peewee.Database:
    parts = urlsplit(url)
    dbname = unquote(parts.path.lstrip("/"))
    if not dbname:
        raise DatabaseConfigError(f"database URL {_redact(url)!r}: no database name after the host")
    params = dict(parse_qsl(parts.query))
    max_conn = pool or _int_param(params, "pool", _env_int("CONVEYOR_DB_POOL", DEFAULT_POOL), url)
    stale = _int_param(params, "stale_timeout", DEFAULT_STALE_S, url)
    connect: dict[str, Any] = {"connect_timeout": 5}
    connect.update(params)  # sslmode, application_name, ... go to libpq as given
    if parts.username:
        connect["user"] = unquote(parts.username)
    if parts.password:
        connect["password"] = unquote(parts.password)
    if parts.hostname:
        connect["host"] = parts.hostname
    if parts.port:
        connect["port"] = parts.port
    db: peewee.Database = PooledPostgresqlDatabase(
        dbname,
        max_connections=max_conn,
        stale_timeout=stale,
        timeout=DEFAULT_POOL_WAIT_S,
        autoconnect=False,
        **connect,
    )
    return db


def open_database(
    url: str, *, pool: int | None = None, retry_s: float | None = None
) -> peewee.Database:
    """Open the database named by ``url`` and bind the models to it.

    ``sqlite:///rel.db``, ``sqlite:////abs.db``, ``sqlite:///:memory:`` (a private
    temporary file), or ``postgresql://user[:pw]@host[:port]/dbname`` with optional
    ``?pool=N&stale_timeout=S`` (pool size defaults to ``CONVEYOR_DB_POOL`` or 8).
    ``retry_s`` bounds how long a call retries transient errors (``CONVEYOR_DB_RETRY_S``,
    default 30). Opening does not connect; the first store call does. Opening again
    closes the previous database first (call it at start-up, not while calls run).
    """
    global _opened
    if pool is not None and pool < 1:
        raise ValueError(f"pool must be >= 1, got {pool}")
    budget = retry_s if retry_s is not None else _env_float("CONVEYOR_DB_RETRY_S", DEFAULT_RETRY_S)
    scheme = url.split(":", 1)[0].lower()
    temp_dir = None
    if scheme == "sqlite":
        db, temp_dir = _open_sqlite(url, pool)
        backend = "sqlite"
    elif scheme in ("postgresql", "postgres"):
        db = _open_postgres(url, pool)
        backend = "postgresql"
    else:
        raise DatabaseConfigError(
            f"database URL {_redact(url)!r}: unsupported scheme {scheme!r} "
            "(use sqlite:///PATH or postgresql://USER@HOST:PORT/DBNAME)"
        )
    with _open_lock:
        _close_locked()
        database.initialize(db)
        _opened = _Opened(backend=backend, retry_s=budget, url=_redact(url), temp_dir=temp_dir)
        _interrupted.clear()
    return db


def _close_locked() -> None:
    global _opened
    opened = _opened
    if opened is None:
        return
    db = database.obj
    _opened = None
    if db is not None:
        db.close_all()
    if opened.temp_dir:
        shutil.rmtree(opened.temp_dir, ignore_errors=True)


def close_database() -> None:
    """Close every pooled connection (and drop a temporary database). Idempotent."""
    with _open_lock:
        _close_locked()


atexit.register(close_database)


def backend() -> str:
    """``"sqlite"`` or ``"postgresql"``; raises `StoreError` when nothing is open."""
    return _require_open().backend


def _require_open() -> _Opened:
    opened = _opened
    if opened is None:
        raise StoreError("the database is not open: call store.open_database(url) first")
    return opened


def add_retry_listener(listener: Callable[[RetryEvent], None]) -> Callable[[], None]:
    """Call ``listener`` before each retry of a store call; returns its remover."""
    _retry_listeners.append(listener)
    return lambda: _retry_listeners.remove(listener)


def _is_permanent(exc: BaseException) -> bool:
    """A PostgreSQL server that answered but refuses these settings (no such database or
    role, wrong password): the same answer comes back however long one retries."""
    text = str(exc)
    return "FATAL:" in text and any(phrase in text for phrase in _PERMANENT_CONNECT_ERRORS)


def _is_transient(exc: BaseException) -> bool:
    opened = _opened
    if opened is None:
        return False
    if opened.backend == "postgresql":
        return isinstance(
            exc,
            peewee.OperationalError
            | peewee.InterfaceError
            | psycopg2.OperationalError
            | psycopg2.InterfaceError,
        ) and not _is_permanent(exc)
    if isinstance(exc, peewee.OperationalError):
        message = str(exc).lower()
        return "locked" in message or "busy" in message
    return False


def _before_retry(operation: str, state: RetryCallState) -> None:
    exc = state.outcome.exception() if state.outcome else None
    assert exc is not None
    delay = state.upcoming_sleep
    event = RetryEvent(operation, state.attempt_number, exc, state.seconds_since_start or 0, delay)
    log.warning(
        "store.%s failed (attempt %d, %.1fs so far), retrying in %.2fs: %s",
        operation,
        event.attempt,
        event.elapsed_s,
        delay,
        exc,
    )
    if _require_open().backend == "postgresql":
        # A server restart kills every idle pooled connection too: drop them now
        # rather than failing once on each of them.
        database.obj.close_idle()
    for listener in list(_retry_listeners):
        listener(event)


def _translate(exc: Exception, operation: str, transient: bool) -> StoreError:
    if isinstance(exc, MaxConnectionsExceeded):
        return StoreUnavailable(
            f"store.{operation}: every pooled database connection stayed busy for "
            f"{DEFAULT_POOL_WAIT_S:.0f}s"
        )
    if transient:
        return StoreUnavailable(f"store.{operation}: database unavailable: {exc}")
    if isinstance(exc, peewee.IntegrityError | psycopg2.IntegrityError):
        return Conflict(f"store.{operation}: {exc}")
    return StoreError(f"store.{operation}: {type(exc).__name__}: {exc}")


def _is_library_error(exc: Exception) -> bool:
    return isinstance(exc, peewee.PeeweeException | psycopg2.Error | MaxConnectionsExceeded)


def _retrying(budget_s: float, before_sleep: Callable[[RetryCallState], None],
              stop: threading.Event | None = None) -> Retrying:
    stops = stop_before_delay(budget_s) | stop_when_event_set(_interrupted)
    if stop is not None:
        stops = stops | stop_when_event_set(stop)

    def sleep(seconds: float) -> None:
        # Wakes early on an interrupt: the stop condition then ends the loop.
        if stop is None:
            _interrupted.wait(seconds)
        else:
            _wait_either(stop, seconds)

    return Retrying(
        retry=retry_if_exception(_is_transient),
        stop=stops,
        wait=wait_exponential_jitter(multiplier=0.05, max=2.0, jitter=0.1),
        sleep=sleep,
        before_sleep=before_sleep,
        reraise=True,
    )


def _wait_either(stop: threading.Event, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not (stop.is_set() or _interrupted.is_set()):
        left = deadline - time.monotonic()
        if left <= 0:
            return
        stop.wait(min(left, 0.1))


def interrupt_retries() -> None:
    """Make store calls stop retrying (at shutdown); `open_database` re-arms them."""
    _interrupted.set()


def check_connection(stop: threading.Event | None = None) -> None:
    """Connect once to prove the database is there, as a process starts.

    A transient failure (the server not up yet) is retried for the retry budget, or
    until ``stop`` is set; a permanent one (no such database, authentication refused)
    fails at once. Raises `StoreUnavailable` with a one-line message naming the URL.
    """
    opened = _require_open()
    db = database.obj

    def connect() -> None:
        with db.connection_context():
            db.execute_sql("SELECT 1")

    said = [-WAITING_LOG_EVERY_S]

    def waiting(state: RetryCallState) -> None:
        elapsed = state.seconds_since_start or 0.0
        exc = state.outcome.exception() if state.outcome else None
        assert exc is not None
        for listener in list(_retry_listeners):
            listener(RetryEvent("check_connection", state.attempt_number, exc, elapsed,
                                state.upcoming_sleep))
        if elapsed - said[0] < WAITING_LOG_EVERY_S:
            return  # backoff retries fast at first: one line every few seconds is plenty
        said[0] = elapsed
        log.warning("waiting for the database %s (%.0fs of %.0fs): %s", opened.url,
                    elapsed, opened.retry_s, _first_line(exc))

    try:
        for attempt in _retrying(opened.retry_s, waiting, stop):
            with attempt:
                connect()
    except Exception as exc:
        if not _is_library_error(exc):
            raise
        raise StoreUnavailable(f"cannot use the database {opened.url}: {_first_line(exc)}") from exc


def _first_line(exc: BaseException | None) -> str:
    text = str(exc).strip()
    # libpq prefixes the server's words with where it connected; keep what it said.
    text = text.splitlines()[0] if text else type(exc).__name__
    text = text.split("failed: ", 1)[1] if "failed: FATAL:" in text else text
    return " ".join(text.split())


def store_call(fn: Callable[P, T]) -> Callable[P, T]:
    """Run ``fn`` on its own pooled connection, retrying transient failures.

    Inside a transaction the caller already opened, ``fn`` runs once on that
    connection: retrying only part of someone else's transaction would be wrong.
    """
    operation = fn.__name__

    @functools.wraps(fn)
    def call(*args: P.args, **kwargs: P.kwargs) -> T:
        opened = _require_open()
        db = database.obj
        if db.in_transaction():
            try:
                return fn(*args, **kwargs)
            except Exception as exc:
                if _is_library_error(exc):
                    raise _translate(exc, operation, _is_transient(exc)) from exc
                raise
        # The first attempt runs bare: building tenacity's machinery costs more than a
        # typical call's own Python, and most calls succeed at once.
        try:
            with db.connection_context():
                return fn(*args, **kwargs)
        except Exception as exc:
            if not _is_transient(exc):
                if _is_library_error(exc):
                    raise _translate(exc, operation, False) from exc
                raise
            first_failure: Exception | None = exc
        retrying = _retrying(opened.retry_s, functools.partial(_before_retry, operation))
        try:
            for attempt in retrying:
                with attempt:
                    if first_failure is not None:
                        # Replayed as tenacity's attempt 1, so backoff, attempt numbers
                        # and listeners see the same sequence as without the fast path.
                        failure, first_failure = first_failure, None
                        raise failure
                    with db.connection_context():
                        return fn(*args, **kwargs)
        except Exception as exc:
            if _is_library_error(exc):
                raise _translate(exc, operation, _is_transient(exc)) from exc
            raise
        raise AssertionError("unreachable: tenacity either returns or raises")

    return call


# SQLite admits one writer at a time, and its busy handler is unfair: with dozens of
# threads writing at once, some sleep past busy_timeout while others keep winning ("database
# is locked"). Queueing the process's writers on one lock first keeps them orderly.
_sqlite_writer = threading.RLock()


@contextmanager
def transaction() -> Iterator[None]:
    """A write transaction (``BEGIN IMMEDIATE`` on SQLite) on the current connection."""
    opened = _opened
    if opened is not None and opened.backend == "sqlite":
        with _sqlite_writer, database.atomic():
            yield
    else:
        with database.atomic():
            yield


@contextmanager
def single_statement() -> Iterator[None]:
    """Around a write of exactly one statement, which commits by itself: the connection
    is in autocommit on both backends, so a BEGIN and a COMMIT are saved. SQLite still
    queues on the process's writer lock (see `transaction`); inside a transaction the
    statement simply joins it.
    """
    opened = _opened
    if opened is not None and opened.backend == "sqlite":
        with _sqlite_writer:
            yield
    else:
        yield
