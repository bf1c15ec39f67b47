"""Pages of lists: bounded by count and by bytes; opaque page tokens (base64 of the kind
of list and the last id returned)."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Sequence
from typing import Protocol, TypeVar

from google.protobuf.message import Message

from rpc.errors import InvalidArgument

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
# Under the 4 MiB that gRPC clients accept by default (grpcurl, buf curl, other
# languages' stubs), far under the server's 16 MiB send limit: rows written before the
# field limits (3.5 MiB descriptions) still list, a few per page.
MAX_PAGE_BYTES = 2 * 1024 * 1024


class _HasId(Protocol):
    @property
    def id(self) -> int: ...


R = TypeVar("R", bound=_HasId)
M = TypeVar("M", bound=Message)


def fill(
    kind: str, records: Sequence[R], size: int, convert: Callable[[R], M],
    max_bytes: int = MAX_PAGE_BYTES,
) -> tuple[list[M], str]:
    """The page of ``records`` (fetched with one row more than ``size``, which tells
    whether another page exists) and its next page token: at most ``size`` items, and
    no more than fit in ``max_bytes`` — but always one, so every item can be listed.
    """
    page: list[M] = []
    used = 0
    for record in records[:size]:
        message = convert(record)
        cost = message.ByteSize() + 8  # and the field's tag and length
        if page and used + cost > max_bytes:
            break
        page.append(message)
        used += cost
    more = len(page) < len(records)
    return page, encode(kind, records[len(page) - 1].id) if more and page else ""


def page_size(requested: int, field: str = "page_size") -> int:
    """The effective page size: 0 means the default; larger than the maximum is capped."""
    if requested < 0:
        raise InvalidArgument(field, f"must not be negative, got {requested}")
    if requested == 0:
        return DEFAULT_PAGE_SIZE
    return min(requested, MAX_PAGE_SIZE)


def encode(kind: str, last_id: int) -> str:
    return base64.urlsafe_b64encode(f"{kind}:{last_id}".encode()).decode("ascii")


def decode(kind: str, token: str, field: str = "page_token") -> int | None:
    """The last id in ``token`` (None for an empty token); rejects tokens of another list."""
    if not token:
        return None
    try:
        text = base64.urlsafe_b64decode(token.encode("ascii")).decode("utf-8")
        found_kind, _, number = text.partition(":")
        last_id = int(number)
    except (ValueError, UnicodeError, binascii.Error):
        raise InvalidArgument(field, "is not a page token this server issued") from None
    if found_kind != kind or last_id <= 0:
        raise InvalidArgument(field, f"is not a page token of this list ({kind})")
    return last_id
