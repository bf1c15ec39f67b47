"""Logging set-up: human text by default, one JSON object per line for log collectors.

``CONVEYOR_LOG_FORMAT=json`` selects JSON. Records carry ``build_id`` and ``job_key``
when the call passed them (``extra={...}``) or, automatically, when they were logged on
an actor's own thread (the actor's ``build_id``/``job_key`` attributes).
"""

from __future__ import annotations

import json
import logging
import sys
import threading
from datetime import UTC, datetime
from typing import Any, TextIO

FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
CONTEXT_FIELDS = ("build_id", "job_key")
# Client libraries whose INFO records narrate their own plumbing (pika: a dozen lines per
# connection, socket by socket): only their warnings reach the log, unless at DEBUG.
QUIET_LIBRARIES = ("pika",)


class LogFormatError(ValueError):
    """``CONVEYOR_LOG_FORMAT`` names no known format."""


def _thread_actor() -> Any:
    # A pykka actor's thread runs the bound method ``actor._actor_loop``; ``Thread``
    # keeps its target until run() returns, so the actor is one attribute away. This is
    # CPython's private attribute: without it records simply carry no actor context.
    target = getattr(threading.current_thread(), "_target", None)
    return getattr(target, "__self__", None)


class ActorContextFilter(logging.Filter):
    """Adds the logging actor's ``build_id``/``job_key`` to records that lack them."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "build_id", None) is None:
            actor = _thread_actor()
            build_id = getattr(actor, "build_id", 0)
            if isinstance(build_id, int) and build_id:
                record.build_id = build_id
                job_key = getattr(actor, "job_key", "")
                if job_key and getattr(record, "job_key", None) is None:
                    record.job_key = job_key
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, context, exception."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "thread": record.threadName,
        }
        for name in CONTEXT_FIELDS:
            value = getattr(record, name, None)
            if value not in (None, "", 0):
                entry[name] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


def make_handler(fmt: str, stream: TextIO | None = None) -> logging.Handler:
    """A stream handler in ``fmt`` (``text`` or ``json``) with the actor context filter."""
    if fmt not in FORMATS:
        raise LogFormatError(f"CONVEYOR_LOG_FORMAT must be one of {', '.join(FORMATS)}, "
                             f"got {fmt!r}")
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    handler.addFilter(ActorContextFilter())
    return handler


def configure_logging(level: str, fmt: str = "text", stream: TextIO | None = None) -> None:
    """Replace the root logger's handlers with one in ``fmt`` at ``level``."""
    handler = make_handler(fmt, stream)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name in QUIET_LIBRARIES:
        logging.getLogger(name).setLevel(
            logging.NOTSET if root.level <= logging.DEBUG else logging.WARNING)
