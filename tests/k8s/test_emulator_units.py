"""Pure pieces of the emulator: selectors, $(VAR) expansion, the store's history."""

from __future__ import annotations

import asyncio

import pytest

from support.k8s_emulator.expansion import expand
from support.k8s_emulator.selectors import (
    SelectorError,
    fields_match,
    labels_match,
    parse_field_selector,
    parse_label_selector,
)
from support.k8s_emulator.store import Expired, Store


def _obj(labels: dict[str, str], phase: str = "Running") -> dict[str, object]:
    return {"metadata": {"name": "p", "namespace": "n", "labels": labels},
            "status": {"phase": phase}}


@pytest.mark.parametrize(("selector", "labels", "expected"), [
    ("a=1", {"a": "1"}, True), ("a==1", {"a": "2"}, False), ("a!=1", {}, True),
    ("a in (1, 2)", {"a": "2"}, True), ("a notin (1,2)", {"a": "3"}, True),
    ("a notin (1,2)", {}, True), ("a", {"a": ""}, True), ("!a", {"a": "1"}, False),
    ("a=1,b in (x,y),!c", {"a": "1", "b": "y"}, True), ("", {"z": "1"}, True),
])
def test_label_selectors(selector: str, labels: dict[str, str], expected: bool) -> None:
    assert labels_match(parse_label_selector(selector), _obj(labels)) is expected


@pytest.mark.parametrize("bad", ["a in (1", "a=1,,b=2", "a in 1)", "=x"])
def test_bad_label_selectors_are_rejected(bad: str) -> None:
    with pytest.raises(SelectorError):
        parse_label_selector(bad)


def test_field_selectors() -> None:
    reqs = parse_field_selector("status.phase!=Failed,metadata.name=p", "pods")
    assert fields_match(reqs, _obj({}, "Running"))
    assert not fields_match(reqs, _obj({}, "Failed"))
    with pytest.raises(SelectorError, match=r"field label not supported: spec\.x"):
        parse_field_selector("spec.x=1", "pods")


@pytest.mark.parametrize(("text", "expected"), [
    ("$(A) $(B)", "1 $(B)"), ("$$(A)", "$(A)"), ("$$$$", "$$"), ("$$A $A", "$A $A"),
    ("$(A", "$(A"), ("x$", "x$"), ("$(A)$(A)", "11"),
])
def test_kubernetes_expansion(text: str, expected: str) -> None:
    assert expand(text, {"A": "1"}) == expected


def test_history_is_bounded_and_watch_replays_selected_transitions() -> None:
    async def scenario() -> None:
        store = Store(history_limit=3, schedule=lambda fn: fn())
        start = store.rv
        store.create("pods", {"metadata": {"name": "a", "namespace": "n", "labels": {"x": "1"}}})
        w = store.watch("pods", "n", parse_label_selector("x=1"), [], since=start)
        store.mutate("pods", "n", "a", lambda p: p["metadata"]["labels"].update(x="2"))
        unchanged = store.rv
        store.mutate("pods", "n", "a", lambda p: None)  # no change: no version, no event
        assert store.rv == unchanged
        got = [w.queue.get_nowait()["type"] for _ in range(w.queue.qsize())]
        assert got == ["ADDED", "DELETED"]  # left the selector
        for i in range(3):
            store.create("pods", {"metadata": {"name": f"b{i}", "namespace": "n"}})
        with pytest.raises(Expired):
            store.watch("pods", "n", [], [], since=start)
        assert store.watch("pods", "n", [], [], since=store.rv - 3).queue.qsize() == 3

    asyncio.run(scenario())
