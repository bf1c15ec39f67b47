"""Engine tests run on SQLite and on PostgreSQL (issue 4)."""

from __future__ import annotations

from tests.databases import db_url, pg_url

__all__ = ["db_url", "pg_url"]
