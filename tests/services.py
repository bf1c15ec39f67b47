"""Reachability of the real services tests need.

Where a service is not reachable the tests that need it skip with a loud reason — except
under CI=true, where they fail.
"""

from __future__ import annotations

import os
import socket

import pytest

from support.services import AMQP_URL, POSTGRES_URL

__all__ = ["AMQP_URL", "POSTGRES_URL", "require_postgres", "require_rabbitmq"]


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def _require(name: str, host: str, port: int) -> None:
    if _reachable(host, port):
        return
    message = f"{name} is not reachable on {host}:{port}"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{message} (CI=true: services are required)")
    pytest.skip(f"!!! SKIPPED: {message} — start it to run these tests")


def require_postgres() -> str:
    """Return the test PostgreSQL URL, or skip/fail the calling test."""
    _require("PostgreSQL", "127.0.0.1", 5432)
    return POSTGRES_URL


def require_rabbitmq() -> str:
    """Return the test AMQP URL, or skip/fail the calling test."""
    _require("RabbitMQ", "127.0.0.1", 5672)
    return AMQP_URL
