"""Suite-wide guards: no test may leave live actors or stray threads behind."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

# Threads that belong to libraries and outlive tests by design.
_IGNORED_PREFIXES = ("ThreadPoolExecutor", "grpc", "Dummy", "pydevd", "asyncio_")


def _live_threads() -> set[threading.Thread]:
    return {
        t
        for t in threading.enumerate()
        if t is not threading.main_thread()
        and t.is_alive()
        and not t.name.startswith(_IGNORED_PREFIXES)
    }


def _live_actors() -> list[object]:
    try:
        import pykka
    except ImportError:  # pragma: no cover
        return []
    return list(pykka.ActorRegistry.get_all())


@pytest.fixture(autouse=True)
def no_leaks() -> Iterator[None]:
    before = _live_threads()
    yield
    actors = _live_actors()
    if actors:
        import pykka

        pykka.ActorRegistry.stop_all(block=True, timeout=5)
        pytest.fail(f"test left live actors behind: {actors}")
    # Threads being joined right now get a short grace period to finish exiting.
    deadline = time.monotonic() + 2.0
    stray = _live_threads() - before
    while stray and time.monotonic() < deadline:
        for t in stray:
            t.join(timeout=max(0.0, deadline - time.monotonic()))
        stray = _live_threads() - before
    if stray:
        pytest.fail(f"test left stray threads behind: {sorted(t.name for t in stray)}")
