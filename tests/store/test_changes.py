"""The in-process change feed (pure threading: no database involved)."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

from store import ChangeFeed


def test_a_waiter_wakes_on_a_publish_of_its_build() -> None:
    feed = ChangeFeed()
    since = feed.version(7)
    with ThreadPoolExecutor(max_workers=1) as pool:
        done = pool.submit(feed.wait, 7, since, 30)
        _until_blocked(feed, 7)
        feed.publish(7)
        assert done.result(timeout=10) == feed.version(7) > since
    assert feed.waiters(7) == 0


def test_a_publish_before_the_wait_is_not_missed() -> None:
    feed = ChangeFeed()
    since = feed.version(1)
    feed.publish(1)
    assert feed.wait(1, since, timeout=30) == feed.version(1) > since


def test_other_builds_do_not_count_and_timeouts_return_the_same_version() -> None:
    feed = ChangeFeed()
    feed.publish(1)
    since = feed.version(1)
    feed.publish(2)
    assert feed.wait(1, since, timeout=0.01) == since
    assert feed.version(2) > since


def test_memory_is_bounded_and_forgotten_builds_wake_early_not_late() -> None:
    feed = ChangeFeed(max_builds=3)
    feed.publish(1)
    old = feed.version(1)
    for build_id in range(2, 20):
        feed.publish(build_id)
    assert len(feed) == 3
    # Build 1 is forgotten: a waiter that saw its old version must not block.
    assert feed.wait(1, old, timeout=30) > old


def _until_blocked(feed: ChangeFeed, build_id: int) -> None:
    deadline = time.monotonic() + 10
    while feed.waiters(build_id) == 0:
        assert time.monotonic() < deadline, "the watcher never blocked"
        threading.Event().wait(0.001)


def test_builds_with_waiters_are_kept() -> None:
    feed = ChangeFeed(max_builds=1)
    since = feed.version(1)

    with ThreadPoolExecutor(max_workers=1) as pool:
        done = pool.submit(feed.wait, 1, since, 30)
        _until_blocked(feed, 1)
        for build_id in range(2, 10):
            feed.publish(build_id)
        feed.publish(1)
        assert done.result(timeout=10) == feed.version(1) > since


def test_concurrent_publishes_are_all_counted() -> None:
    feed = ChangeFeed()

    def publish_many(build_id: int) -> None:
        for _ in range(500):
            feed.publish(build_id)

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(publish_many, range(4)))
    assert max(feed.version(b) for b in range(4)) == 2000
