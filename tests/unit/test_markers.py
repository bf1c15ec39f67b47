"""The marker parser: events round-trip, everything else is ordinary output."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from workflow.markers import (
    OUTCOMES,
    Event,
    JobFinished,
    JobOutput,
    MarkerError,
    MarkerParser,
    StepFinished,
    StepStarted,
    format_marker,
    new_nonce,
)

NONCE = "0123456789abcdef0123456789abcdef"
# Any text a step could print: no line breaks, no lone surrogates (not encodable).
TEXT = st.text(st.characters(blacklist_categories=("Cs",)))
LINE = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\n"))
OUTCOME = st.sampled_from(sorted(OUTCOMES))
EVENTS: st.SearchStrategy[Event] = st.one_of(
    st.builds(StepStarted, st.integers(0, 10**6), TEXT),
    st.builds(
        StepFinished,
        st.integers(0, 10**6),
        OUTCOME,
        OUTCOME,
        st.none() | st.integers(0, 255),
        TEXT,
    ),
    st.builds(JobOutput, TEXT, TEXT),
    st.builds(JobFinished, st.integers(0, 255)),
)


@given(EVENTS)
def test_every_event_round_trips(event: Event) -> None:
    line = format_marker(NONCE, event)
    assert "\n" not in line
    parser = MarkerParser(NONCE)
    assert parser.feed(line) == event
    assert parser.feed(line + "\n") == event
    assert parser.feed(line + "\r\n") == event


@given(st.lists(st.one_of(LINE, EVENTS.map(lambda e: format_marker(new_nonce(), e)))))
def test_lines_without_this_jobs_marker_are_ordinary(lines: list[str]) -> None:
    """Arbitrary output, including real-looking markers of other jobs, stays output."""
    parser = MarkerParser(NONCE)
    assert [parser.feed(line) for line in lines] == [None] * len(lines)


@given(st.lists(st.one_of(LINE.map(lambda s: ("line", s)), EVENTS.map(lambda e: ("event", e)))))
def test_a_mixed_stream_splits_back_into_output_and_events(
    items: list[tuple[str, object]],
) -> None:
    parser = MarkerParser(NONCE)
    output: list[str] = []
    events: list[Event] = []
    for kind, item in items:
        if kind == "line":
            assert isinstance(item, str)
            line = item
        else:
            line = format_marker(NONCE, item)  # type: ignore[arg-type]
        event = parser.feed(line)
        if event is None:
            output.append(line)
        else:
            events.append(event)
    assert output == [item for kind, item in items if kind == "line"]
    assert events == [item for kind, item in items if kind == "event"]


def test_the_line_format() -> None:
    assert (
        format_marker(NONCE, StepStarted(3, "Build"))
        == f"::conveyor:{NONCE}::step-start::3::QnVpbGQ="
    )
    finished = StepFinished(2, "skipped", "skipped", None, "")
    assert format_marker(NONCE, finished) == (
        f"::conveyor:{NONCE}::step-end::2::skipped::skipped::-::"
    )
    assert format_marker(NONCE, JobFinished(143)) == f"::conveyor:{NONCE}::job-end::143"


def test_hex_fields_from_images_without_base64() -> None:
    parser = MarkerParser(NONCE)
    line = f"::conveyor:{NONCE}::output::%6e616d65::%c3a9"
    assert parser.feed(line) == JobOutput("name", "é")


@pytest.mark.parametrize(
    "body",
    [
        "step-start::x::",
        "step-start::1",
        "step-end::1::done::success::0::",
        "step-end::1::success::success::zero::",
        "output::!!!::",
        "job-end::",
        "whatever",
        "",
    ],
)
def test_a_malformed_marker_with_this_nonce_is_an_error(body: str) -> None:
    with pytest.raises(MarkerError, match="marker line"):
        MarkerParser(NONCE).feed(f"::conveyor:{NONCE}::{body}")


def test_markers_must_start_the_line() -> None:
    line = " " + format_marker(NONCE, JobFinished(0))
    assert MarkerParser(NONCE).feed(line) is None


def test_nonces() -> None:
    first, second = new_nonce(), new_nonce()
    assert first != second
    MarkerParser(first)
    for bad in ("", "short", "has space in it", "x" * 200, "abc:def:ghi"):
        with pytest.raises(ValueError, match="nonce"):
            MarkerParser(bad)
