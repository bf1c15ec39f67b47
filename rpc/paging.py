"""Opaque page tokens: base64 of the kind of list and the last id returned."""

from __future__ import annotations

import base64
import binascii

from rpc.errors import InvalidArgument

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500


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
