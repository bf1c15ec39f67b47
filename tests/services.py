"""Reachability of the real services tests need.

Where a service is not reachable the tests that need it skip with a loud reason — except
under CI=true, where they fail (DESIGN.md §10).
"""

from __future__ import annotations

import os
import socket

import pytest

POSTGRES_URL = os.environ.get("CONVEYOR_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
AMQP_URL = os.environ.get("CONVEYOR_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")


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
