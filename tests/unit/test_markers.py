"""The marker parser: events round-trip, everything else is ordinary output, also when a
marker follows output that had no final newline."""

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
TEXT = st.text(st.characters(codec="utf-8"))
LINE = st.text(st.characters(codec="utf-8", exclude_characters="\n"))
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
    assert parser.feed(line) == (None, event)
    assert parser.feed(line + "\n") == (None, event)
    assert parser.feed(line + "\r\n") == (None, event)


@given(st.lists(st.one_of(LINE, EVENTS.map(lambda e: format_marker(new_nonce(), e)))))
def test_lines_without_this_jobs_marker_are_ordinary(lines: list[str]) -> None:
    """Arbitrary output, including real-looking markers of other jobs, stays output."""
    parser = MarkerParser(NONCE)
    assert [parser.feed(line) for line in lines] == [(line, None) for line in lines]


# What a step writes between two markers: any text, with or without a final newline.
CHUNK = st.text(st.characters(codec="utf-8"))


@given(st.lists(st.one_of(CHUNK.map(lambda s: ("output", s)), EVENTS.map(lambda e: ("event", e)))))
def test_a_stream_splits_back_into_output_lines_and_events(
    items: list[tuple[str, object]],
) -> None:
    """The runner script's stream: steps' output as written, each marker printed with a
    final newline, read and split on newlines as the engine does. Output comes back as
    its lines, unchanged (a missing final newline makes no difference), and events come
    back in order with it."""
    stream = pending = ""
    expected: list[object] = []
    for kind, item in [*items, ("end", None)]:
        if kind == "output":
            assert isinstance(item, str)
            stream += item
            pending += item  # consecutive writes make one text
            continue
        expected += pending.removesuffix("\n").split("\n") if pending else []
        pending = ""
        if kind == "event":
            stream += format_marker(NONCE, item) + "\n"  # type: ignore[arg-type]
            expected.append(item)
    lines = stream.split("\n")
    if lines[-1] == "":
        lines.pop()
    parser = MarkerParser(NONCE)
    got: list[object] = []
    for line in lines:
        text, event = parser.feed(line)
        got += [x for x in (text, event) if x is not None]
    assert got == expected


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
    assert parser.feed(line) == (None, JobOutput("name", "é"))


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


def test_a_marker_after_output_without_newline() -> None:
    parser = MarkerParser(NONCE)
    marker = format_marker(NONCE, JobFinished(0))
    assert parser.feed(" " + marker) == (" ", JobFinished(0))
    assert parser.feed("50%\r" + marker + "\r\n") == ("50%\r", JobFinished(0))
    # another job's marker (or a partial one) before this job's is output
    other = format_marker(new_nonce(), JobFinished(1))
    assert parser.feed(other + marker) == (other, JobFinished(0))
    assert parser.feed("::conveyor:" + marker) == ("::conveyor:", JobFinished(0))


def test_a_malformed_marker_after_output_is_an_error() -> None:
    with pytest.raises(MarkerError, match="marker line '::conveyor:"):
        MarkerParser(NONCE).feed(f"text::conveyor:{NONCE}::job-end::x")


def test_nonces() -> None:
    first, second = new_nonce(), new_nonce()
    assert first != second
    MarkerParser(first)
    for bad in ("", "short", "has space in it", "x" * 200, "abc:def:ghi"):
        with pytest.raises(ValueError, match="nonce"):
            MarkerParser(bad)
