"""Cutting a job's output into bounded lines: linear, lossless, the same however it is read."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from workflow.markers import (
    CONTINUED,
    Event,
    JobFinished,
    JobOutput,
    MarkerError,
    OutputReader,
    Segment,
    StepFinished,
    StepStarted,
    format_marker,
)

NONCE = "abcdef0123456789"
HEAD = f"::conveyor:{NONCE}::"


def _read(data: bytes, pieces: list[int] | None = None, **limits: int) -> list[Segment]:
    reader = OutputReader(NONCE, **limits)
    out: list[Segment] = []
    sizes = iter(pieces or [len(data) or 1])
    at = 0
    while at < len(data):
        step = max(1, next(sizes, 1 << 16))
        out += reader.feed(data[at : at + step])
        at += step
    return out + reader.close()


def _flat(segments: list[Segment]) -> list[str | Event | str]:
    """Lines and events in order; a MarkerError as its class name."""
    flat: list[str | Event | str] = []
    for segment in segments:
        if isinstance(segment, list):
            flat.extend(segment)
        elif isinstance(segment, MarkerError):
            flat.append("MarkerError")
        else:
            flat.append(segment)
    return flat


def _lines(segments: list[Segment]) -> list[str]:
    return [item for item in _flat(segments) if isinstance(item, str) and item != "MarkerError"]


def _joined(lines: list[str]) -> str:
    """The output text again: continued pieces joined to what follows them."""
    return "".join(
        line[: -len(CONTINUED)] if line.endswith(CONTINUED) else line + "\n" for line in lines
    )


def test_ordinary_lines_and_markers_come_out_in_order() -> None:
    start = format_marker(NONCE, StepStarted(0, "build"))
    end = format_marker(NONCE, StepFinished(0, "success", "success", 0, ""))
    data = f"one\r\n{start}\ntwo\npartial{end}\r\nlast".encode()
    assert _flat(_read(data)) == [
        "one", StepStarted(0, "build"), "two", "partial",
        StepFinished(0, "success", "success", 0, ""), "last",
    ]


def test_a_long_line_is_cut_into_continued_pieces_never_dropped() -> None:
    lines = _lines(_read(b"x" * 250 + b"\nshort\n", max_line=100, max_marker=400))
    assert lines == ["x" * 100 + CONTINUED, "x" * 100 + CONTINUED, "x" * 50, "short"]
    assert _joined(lines) == "x" * 250 + "\nshort\n"


def test_a_carriage_return_at_a_cut_survives_in_the_piece() -> None:
    text = "a" * 99 + "\r" + "b" * 10
    lines = _lines(_read(text.encode() + b"\n", max_line=100, max_marker=400))
    assert lines == ["a" * 99 + "\r" + CONTINUED, "b" * 10]
    assert _joined(lines) == text + "\n"


def test_a_marker_after_a_long_unterminated_output_is_still_seen() -> None:
    end = format_marker(NONCE, JobFinished(3))
    data = ("y" * 1000 + end + "\n").encode()
    for pieces in ([len(data)], [7] * 400, [1] * 2000):
        flat = _flat(_read(data, pieces, max_line=100, max_marker=400))
        assert flat[-1] == JobFinished(3)
        assert flat[-2] == "y" * 100  # ended by the marker, not continued
        assert _joined([f for f in flat if isinstance(f, str)]) == "y" * 1000 + "\n"


def test_a_marker_longer_than_a_line_is_parsed_whole() -> None:
    marker = format_marker(NONCE, JobOutput("blob", "v" * 3000))
    flat = _flat(_read(f"{marker}\nafter\n".encode(), [13] * 1000, max_line=100,
                       max_marker=8000))
    assert flat == [JobOutput("blob", "v" * 3000), "after"]


def test_a_marker_over_its_limit_is_kept_as_output_and_reported() -> None:
    marker = format_marker(NONCE, JobOutput("blob", "v" * 3000))
    for pieces in ([100_000], [13] * 1000):
        flat = _flat(_read(f"{marker}\nafter\n".encode(), pieces, max_line=100,
                           max_marker=1000))
        assert "MarkerError" in flat
        lines = [f for f in flat if isinstance(f, str) and f != "MarkerError"]
        assert _joined(lines) == f"{marker}\nafter\n"
        assert max(map(len, lines)) <= 101


def test_text_that_looks_like_a_marker_of_another_job_is_output() -> None:
    other = format_marker("0" * 16, JobFinished(0))
    assert _flat(_read(f"{other}\n".encode())) == [other]


def test_a_bad_marker_of_this_job_is_kept_as_output_and_reported() -> None:
    flat = _flat(_read(f"{HEAD}step-end::x\nnext\n".encode()))
    assert flat == [f"{HEAD}step-end::x", "MarkerError", "next"]


def test_nul_and_invalid_utf8_become_replacement_characters() -> None:
    assert _lines(_read(b"a\x00b\n\xff\xfe\n")) == ["a\ufffdb", "\ufffd\ufffd"]


def test_a_character_split_between_reads_is_decoded_whole() -> None:
    data = "é€😀\n".encode()
    assert _lines(_read(data, [1] * len(data))) == ["é€😀"]


_alphabet = st.sampled_from(["a", "b", "\n", "\r", "é", HEAD[:5], HEAD, "::"])


@settings(max_examples=300, deadline=None)
@given(
    parts=st.lists(_alphabet, max_size=120),
    events=st.lists(st.integers(0, 119), max_size=4),
    pieces=st.lists(st.integers(1, 40), min_size=1, max_size=50),
)
def test_the_same_lines_however_the_output_is_read(
    parts: list[str], events: list[int], pieces: list[int]
) -> None:
    for at in sorted(events, reverse=True):
        parts.insert(at, format_marker(NONCE, JobFinished(at)) + "\n")
    data = "".join(parts).encode()
    whole = _read(data, max_line=32, max_marker=64)
    assert _flat(_read(data, pieces, max_line=32, max_marker=64)) == _flat(whole)
    lines = _lines(whole)
    assert all(len(line) <= 33 for line in lines if HEAD not in line)
    assert all(len(line) <= 65 for line in lines)  # a bad marker is kept whole up to its limit


def test_what_is_held_of_an_unended_line_stays_bounded() -> None:
    """What makes the cost linear: a line without its newline is never held (and so
    never copied again) beyond one piece and one read, however long it grows."""
    reader = OutputReader(NONCE)
    read = 1 << 16
    held = 0
    sent = 0
    for _ in range(256):  # 16 MiB of one line
        for segment in reader.feed(b"z" * read):
            assert isinstance(segment, list)
            sent += sum(map(len, segment))
        held = max(held, sum(map(len, reader._parts)))
    assert held <= reader.max_line + len(HEAD) + read
    assert sent + sum(map(len, reader._parts)) == 256 * read + sent // (reader.max_line + 1)


@settings(max_examples=200, deadline=None)
@given(text=st.text(st.sampled_from("ab\né€"), max_size=300),
       pieces=st.lists(st.integers(1, 40), min_size=1, max_size=50))
def test_the_pieces_join_into_the_output_again(text: str, pieces: list[int]) -> None:
    lines = _lines(_read(text.encode(), pieces, max_line=32, max_marker=64))
    assert _joined(lines) == (text if not text or text.endswith("\n") else text + "\n")
