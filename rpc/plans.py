"""Workflow plans by content: each text is validated once, and large ones one at a time.

Validating a ~1 MB workflow of expressions costs seconds of CPU, and StartPipelineBuild
validated the pipeline's workflow again on every build. Plans (or their errors) are kept
by the SHA-256 of the text, bounded by the total size of the texts kept; concurrent
requests for the same text wait for the one validation running. Texts over
``heavy_bytes`` take one of ``heavy_at_once`` slots first, so a burst of large distinct
workflows costs at most that many cores' worth at once (with the GIL: one), and a
request that cannot get a slot within ``wait_s`` is refused with RESOURCE_EXHAUSTED.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass

import workflow
from rpc.errors import ResourceExhausted
from workflow.errors import WorkflowError, WorkflowInvalid
from workflow.model import Plan

MAX_CACHED_BYTES = 8 * 1024 * 1024  # of workflow text; a plan takes ~6x its text
MAX_CACHED = 256
HEAVY_BYTES = 64 * 1024  # a few hundred ms of validation and more
HEAVY_AT_ONCE = 1
WAIT_S = 30.0


@dataclass(frozen=True)
class _Result:
    plan: Plan | None
    errors: tuple[WorkflowError, ...]
    size: int


class Plans:
    """The plans of workflow texts, validated once per content (thread-safe)."""

    def __init__(self, *, max_bytes: int = MAX_CACHED_BYTES, max_entries: int = MAX_CACHED,
                 heavy_bytes: int = HEAVY_BYTES, heavy_at_once: int = HEAVY_AT_ONCE,
                 wait_s: float = WAIT_S) -> None:
        self._max_bytes = max_bytes
        self._max_entries = max_entries
        self._heavy_bytes = heavy_bytes
        self._heavy = threading.BoundedSemaphore(heavy_at_once)
        self._wait_s = wait_s
        self._lock = threading.Lock()
        self._done: OrderedDict[str, _Result] = OrderedDict()
        self._running: dict[str, threading.Event] = {}
        self._bytes = 0
        self.validations = 0  # how many texts were actually validated

    def load(self, text: str) -> Plan:
        """The plan of ``text``; `WorkflowInvalid` with every error when it is invalid."""
        result = self._result(text)
        if result.plan is None:
            raise WorkflowInvalid(result.errors)
        return result.plan

    def errors(self, text: str) -> list[WorkflowError]:
        """Every error of ``text`` (as ``workflow.validate``); empty when it is valid."""
        return list(self._result(text).errors)

    def _result(self, text: str) -> _Result:
        key = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
        while True:
            with self._lock:
                found = self._done.get(key)
                if found is not None:
                    self._done.move_to_end(key)
                    return found
                running = self._running.get(key)
                if running is None:
                    mine = self._running[key] = threading.Event()
                    break
            # Somebody validates this very text now: their result is ours.
            if not running.wait(self._wait_s):
                raise ResourceExhausted(
                    f"the same workflow has been validating for over {self._wait_s:g}s; "
                    "try again later")
        try:
            result = self._validate(text)
            self._keep(key, result)
            return result
        finally:
            with self._lock:
                del self._running[key]
            mine.set()

    def _validate(self, text: str) -> _Result:
        heavy = len(text) > self._heavy_bytes
        if heavy and not self._heavy.acquire(timeout=self._wait_s):
            raise ResourceExhausted(
                f"the server is validating other large workflows (over "
                f"{self._heavy_bytes // 1024} KiB); try again in a minute")
        try:
            with self._lock:
                self.validations += 1
            try:
                plan = workflow.load(text)
            except WorkflowInvalid as exc:
                return _Result(None, exc.errors, len(text))
            return _Result(plan, (), len(text))
        finally:
            if heavy:
                self._heavy.release()

    def _keep(self, key: str, result: _Result) -> None:
        if result.size > self._max_bytes:
            return
        with self._lock:
            self._done[key] = result
            self._bytes += result.size
            while self._bytes > self._max_bytes or len(self._done) > self._max_entries:
                _, dropped = self._done.popitem(last=False)
                self._bytes -= dropped.size
