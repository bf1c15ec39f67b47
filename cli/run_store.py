"""Where `conveyor run` keeps its state: a store of its own, never a server's.

`conveyor run` starts a private server. Pointed at a server's database it would be one
more executor of that installation: it could replace the server's pipelines, record
builds and users there, and take over builds whose executor died. So it reads none of
the server's ``CONVEYOR_*`` variables: its store is a temporary SQLite database unless
``--database-url`` names one, which must be its own (empty, or used by `conveyor run`
alone), and its queue is always in memory. Its identity, ``local``, is a plain user,
never an instance admin: creating the pipeline makes it that pipeline's admin, which is
all a run needs.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import store
from rpc import tokens
from runtime_config import Config

RUN_USER = "local"
TOKEN_TTL = timedelta(days=1)


class SharedStore(Exception):
    """The database belongs to a server (or is unreachable): `conveyor run` refuses it."""


def run_config(tmp: Path, database_url: str | None) -> Config:
    """The private server's configuration: built from flags alone (``env={}``)."""
    return Config.from_env(
        env={},
        role="all",
        listen="127.0.0.1:0",
        queue_url="memory://",
        backend="local",
        workdir=tmp / "work",
        database_url=database_url or f"sqlite:///{tmp / 'conveyor.db'}",
        migrate_on_start=True,  # the store is the run's own (checked by check_own_store)
        metrics_listen="off",
        local_trusted=True,  # the caller's own jobs on their own machine: no sandbox
    )


def check_own_store(url: str) -> None:
    """Refuse a database that anyone but `conveyor run` has used: one with users other
    than :data:`RUN_USER` (a server's admin, its developers)."""
    try:
        store.open_database(url, retry_s=0)
    except ValueError as exc:
        raise SharedStore(str(exc)) from None
    try:
        others = store.user_names_except(RUN_USER, limit=3)
    except store.StoreError as exc:
        raise SharedStore(f"cannot read the database: {exc}".strip()) from None
    finally:
        store.close_database()
    if others:
        raise SharedStore(
            f"the database has users ({', '.join(others)}…) that `conveyor run` did not "
            "create: it belongs to a server, and `conveyor run` never writes to a "
            "server's store (use `conveyor pipeline update` and `conveyor trigger "
            "--follow` to run a workflow there)"
        )


def issue_token() -> str:
    """A fresh token of :data:`RUN_USER`, a plain user (created if missing)."""
    user_id = store.ensure_user(RUN_USER, is_admin=False)
    secret = tokens.new_token()
    store.create_token(user_id, "conveyor run", tokens.token_hash(secret),
                       expires_at=store.utcnow() + TOKEN_TTL)
    return secret
