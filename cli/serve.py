"""`conveyor serve` and `conveyor db migrate`."""

from __future__ import annotations

import argparse
import os
import sys

from observability.logs import LogFormatError, configure_logging
from runtime import Config, ConfigError, serve
from runtime_config import forget_secrets


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="conveyor serve",
                                description="Run a Conveyor server (configured by CONVEYOR_* "
                                            "environment variables; flags override them).")
    p.add_argument("--role", choices=["all", "pipeline", "executor"])
    p.add_argument("--listen", help="host:port to serve gRPC on (CONVEYOR_LISTEN)")
    p.add_argument("--database-url", help="CONVEYOR_DATABASE_URL")
    p.add_argument("--amqp-url", dest="queue_url", help="CONVEYOR_AMQP_URL (memory:// embedded)")
    p.add_argument("--executor-addr", help="CONVEYOR_EXECUTOR_ADDR (pipeline role)")
    p.add_argument("--migrate", action="store_true", help="apply migrations before serving")
    p.add_argument("--log-level", default="INFO")
    p.add_argument("--log-format", choices=["text", "json"],
                   help="CONVEYOR_LOG_FORMAT: text (default) or json, one object per line")
    args = p.parse_args(argv)
    try:
        configure_logging(args.log_level,
                          args.log_format or os.environ.get("CONVEYOR_LOG_FORMAT") or "text")
    except LogFormatError as exc:
        print(f"conveyor serve: {exc}", file=sys.stderr)
        return 2
    try:
        config = Config.from_env(role=args.role, listen=args.listen,
                                 database_url=args.database_url, queue_url=args.queue_url,
                                 executor_addr=args.executor_addr,
                                 migrate_on_start=True if args.migrate else None)
    except ConfigError as exc:
        print(f"conveyor serve: {exc}", file=sys.stderr)
        return 2
    # Read once: what the server starts later must not inherit the secrets, and the
    # files it creates (database, work directories) are its own.
    forget_secrets(os.environ)
    os.umask(0o077)
    return serve(config)


def db_main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="conveyor db")
    p.add_argument("action", choices=["migrate"])
    p.add_argument("--database-url", help="CONVEYOR_DATABASE_URL")
    args = p.parse_args(argv)
    import store
    from store.migrations import migrate

    try:
        config = Config.from_env(database_url=args.database_url)
    except ConfigError as exc:
        print(f"conveyor db: {exc}", file=sys.stderr)
        return 2
    db = store.open_database(config.database_url)
    try:
        applied = migrate(db)
    finally:
        store.close_database()
    print(f"applied migrations: {applied}" if applied else "database is up to date")
    return 0
