"""Where the real services the tests and benches use listen (tests/services.py skips or
fails a test when they do not answer)."""

from __future__ import annotations

import os

POSTGRES_URL = os.environ.get("CONVEYOR_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
AMQP_URL = os.environ.get("CONVEYOR_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")
