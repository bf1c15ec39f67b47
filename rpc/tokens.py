"""API tokens (pure): generation, hashing, and reading the bearer header.

Tokens are 256 random bits, so a fast hash is enough: SHA-256 of a high-entropy secret
cannot be brute-forced, and it lets the server find a token by its hash in one indexed
lookup. bcrypt/argon2 exist to slow down guessing low-entropy passwords; on every API
call they would cost tens of milliseconds of CPU and gain nothing here.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable

PREFIX = "cvy_"  # recognisable in logs and by secret scanners
_BYTES = 32


def new_token() -> str:
    """A fresh secret token (shown once to its owner, never stored)."""
    return PREFIX + secrets.token_urlsafe(_BYTES)


def token_hash(token: str) -> str:
    """What the database stores for ``token``: its SHA-256, hex."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def bearer(metadata: Iterable[tuple[str, str | bytes]] | None) -> str | None:
    """The token of an ``authorization: Bearer <token>`` entry; None when absent.

    Raises ValueError for an authorization entry that is not a bearer token.
    """
    for key, value in metadata or ():
        if key.lower() != "authorization":
            continue
        text = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
        scheme, _, token = text.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise ValueError("the authorization metadata must be 'Bearer <token>'")
        return token.strip()
    return None


def same_secret(given: str, expected: str) -> bool:
    """Constant-time comparison (the internal token is compared, not looked up)."""
    return secrets.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))
