from __future__ import annotations

import pytest

from rpc import paging
from rpc.errors import InvalidArgument


def test_token_round_trip() -> None:
    token = paging.encode("builds", 42)
    assert "42" not in token  # opaque to clients
    assert paging.decode("builds", token) == 42
    assert paging.decode("builds", "") is None


@pytest.mark.parametrize("token", ["%%%", "bm9wZQ==", paging.encode("pipelines", 3)])
def test_foreign_or_garbled_tokens_are_invalid_arguments(token: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        paging.decode("builds", token)
    assert caught.value.violations[0].field == "page_token"


def test_page_size_default_cap_and_negative() -> None:
    assert paging.page_size(0) == paging.DEFAULT_PAGE_SIZE
    assert paging.page_size(7) == 7
    assert paging.page_size(10_000) == paging.MAX_PAGE_SIZE
    with pytest.raises(InvalidArgument, match="negative"):
        paging.page_size(-1)
