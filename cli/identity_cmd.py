"""`conveyor token create|list|revoke`, `conveyor user create|disable|enable`,
`conveyor whoami`, and `conveyor admin bootstrap`.

`admin bootstrap` talks to the database, not to a server: it is how the first token
comes to exist. It refuses when an instance admin exists already; `--force` adds
another admin (the way back in after losing every admin token: whoever can reach the
database owns the instance anyway).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import UTC, datetime

from google.protobuf import timestamp_pb2

from cli.client_common import (
    EXIT_FAILED,
    EXIT_OK,
    Parser,
    add_common,
    parse_duration,
    print_json,
    run,
    table,
    to_json,
)
from cli.errors import CliError, report
from conveyor.v1 import identity_pb2
from rpc.client import Client

BOOTSTRAP = "conveyor admin bootstrap"


def _when(ts: timestamp_pb2.Timestamp, has: bool) -> str:
    if not has:
        return "-"
    return ts.ToDatetime(tzinfo=UTC).strftime("%Y-%m-%d %H:%M")


def _state(token: identity_pb2.Token) -> str:
    if token.HasField("revoke_time"):
        return "revoked"
    if token.HasField("expire_time") and token.expire_time.ToDatetime(tzinfo=UTC) <= datetime.now(
        UTC
    ):
        return "expired"
    return "active"


def token_main(argv: list[str]) -> int:
    p = Parser(prog="conveyor token", description="Manage API tokens.")
    sub = p.add_subparsers(dest="action", required=True, metavar="ACTION",
                           help="one of these; `ACTION --help` shows its options")
    create = sub.add_parser("create", help="a new token (its secret is shown once)")
    create.add_argument("--name", default="cli", help="a label for it (default cli)")
    create.add_argument("--user", default="", help="for another user (instance admins)")
    create.add_argument("--ttl", default="0", help="lifetime: 3600, 90m, 12h, 30d; 0 = never")
    listing = sub.add_parser("list", help="your tokens (or --user's)")
    listing.add_argument("--user", default="", help="another user's tokens (instance admins)")
    revoke = sub.add_parser("revoke", help="revoke a token by id")
    revoke.add_argument("id", type=int, help="the token's id (as `conveyor token list` shows)")
    for sp in (create, listing, revoke):
        add_common(sp)
    args = p.parse_args(argv)
    return run("conveyor token", args, lambda client: _token(client, args))


def _token(client: Client, args: argparse.Namespace) -> int:
    api = client.identity
    if args.action == "create":
        made = api.CreateToken(identity_pb2.CreateTokenRequest(
            name=args.name, user=args.user, ttl_seconds=parse_duration(args.ttl)))
        if args.json:
            print_json({"token": to_json(made.token), "secret": made.secret})
        else:
            expires = _when(made.token.expire_time, made.token.HasField("expire_time"))
            print(f"token {made.token.id} ({made.token.name}) for {made.token.user}, "
                  f"expires {expires}")
            print("the secret is shown this once; export it as CONVEYOR_TOKEN:")
            print(made.secret)
    elif args.action == "list":
        found = api.ListTokens(identity_pb2.ListTokensRequest(user=args.user)).tokens
        if args.json:
            print_json([to_json(t) for t in found])
        else:
            rows = [[str(t.id), t.name, t.user, _state(t),
                     _when(t.create_time, t.HasField("create_time")),
                     _when(t.expire_time, t.HasField("expire_time")),
                     _when(t.last_use_time, t.HasField("last_use_time"))] for t in found]
            print("\n".join(table(["ID", "NAME", "USER", "STATE", "CREATED", "EXPIRES",
                                   "LAST USED"], rows)))
    else:
        revoked = api.RevokeToken(identity_pb2.RevokeTokenRequest(token_id=args.id)).token
        if args.json:
            print_json(to_json(revoked))
        else:
            print(f"token {revoked.id} ({revoked.name}) of {revoked.user} is revoked")
    return EXIT_OK


def user_main(argv: list[str]) -> int:
    p = Parser(prog="conveyor user", description="Manage users.")
    sub = p.add_subparsers(dest="action", required=True, metavar="ACTION",
                           help="one of these; `ACTION --help` shows its options")
    create = sub.add_parser("create", help="a new user (instance admins)")
    create.add_argument("name", help="the user's name")
    create.add_argument("--admin", action="store_true", help="an instance admin")
    disable = sub.add_parser("disable", help="refuse every token of a user and end their "
                             "running calls (instance admins)")
    disable.add_argument("name", help="the user to disable")
    enable = sub.add_parser("enable", help="undo `disable` (instance admins)")
    enable.add_argument("name", help="the user to enable again")
    for sp in (create, disable, enable):
        add_common(sp)
    args = p.parse_args(argv)
    if args.action in ("disable", "enable"):
        return run("conveyor user", args, lambda client: _switch(client, args))

    def body(client: Client) -> int:
        user = client.identity.CreateUser(
            identity_pb2.CreateUserRequest(name=args.name, admin=args.admin)).user
        if args.json:
            print_json(to_json(user))
        else:
            kind = "instance admin" if user.admin else "user"
            print(f"created {kind} {user.name}; give them a token: "
                  f"conveyor token create --user {user.name}")
        return EXIT_OK

    return run("conveyor user", args, body)


def _switch(client: Client, args: argparse.Namespace) -> int:
    if args.action == "disable":
        done = client.identity.DisableUser(identity_pb2.DisableUserRequest(name=args.name))
        user, what = done.user, f"disabled; {done.calls_ended} running calls ended"
    else:
        user = client.identity.EnableUser(identity_pb2.EnableUserRequest(name=args.name)).user
        what = "enabled: their tokens work again"
    if args.json:
        print_json(to_json(user))
    else:
        print(f"user {user.name} is {what}")
    return EXIT_OK


def whoami_main(argv: list[str]) -> int:
    p = Parser(prog="conveyor whoami", description="Who your token is.")
    add_common(p)
    args = p.parse_args(argv)

    def body(client: Client) -> int:
        user = client.identity.WhoAmI(identity_pb2.WhoAmIRequest()).user
        if args.json:
            print_json(to_json(user))
        else:
            print(f"{user.name}{' (instance admin)' if user.admin else ''}")
        return EXIT_OK

    return run("conveyor whoami", args, body)


def admin_main(argv: list[str]) -> int:
    p = Parser(prog="conveyor admin",
               description="Instance administration, straight on the database.")
    sub = p.add_subparsers(dest="action", required=True, metavar="ACTION",
                           help="one of these; `ACTION --help` shows its options")
    boot = sub.add_parser(
        "bootstrap", help="create the first instance admin and print a token",
        description="Create the first instance admin and print its token on stdout, alone "
                    "on its line (`export CONVEYOR_TOKEN=$(conveyor admin bootstrap)`); the "
                    "admin exists only once the token was written. PostgreSQL databases "
                    "must be migrated first (`conveyor db migrate`).")
    boot.add_argument("--name", default="admin", help="the admin's user name (default admin)")
    boot.add_argument("--force", action="store_true",
                      help="even if an admin exists (adds one; lost every admin token)")
    boot.add_argument("--database-url", help="CONVEYOR_DATABASE_URL")
    boot.add_argument("--json", action="store_true",
                      help="print JSON on stdout, errors included")
    args = p.parse_args(argv)
    import store
    from rpc import tokens
    from rpc.validation import USER_NAME
    from runtime import Config, ConfigError, StartFailed, open_store
    from store.db import transaction

    def fail(code: str, message: str) -> int:
        error = CliError(message, code=code)
        try:
            report(BOOTSTRAP, error, as_json=args.json)
            sys.stdout.flush()  # a reader gone shows here, where it is handled
        except OSError:
            _silence_stdout()  # the error was said on stderr
        return error.exit_code

    if not USER_NAME.fullmatch(args.name):
        return fail("INVALID_ARGUMENT", f"--name: {args.name!r} is not a valid user name")
    try:
        config = Config.from_env(database_url=args.database_url)
        open_store(config)  # SQLite migrates itself, as under `serve`
    except ConfigError as exc:
        return fail("INVALID_ARGUMENT", str(exc))
    except StartFailed as exc:
        return fail("FAILED_PRECONDITION", str(exc))
    secret = tokens.new_token()
    delivered = False
    try:
        # The token is written inside the transaction that creates the admin: when it
        # cannot be delivered (stdout closed, `| head` gone) nothing is created.
        with store.database.connection_context(), transaction():
            user, token = store.bootstrap_admin(args.name, tokens.token_hash(secret),
                                                force=args.force)
            if args.json:
                _deliver(json.dumps({"user": user.name, "token_id": token.id,
                                     "secret": secret}, indent=2, sort_keys=True))
            else:
                _deliver(secret)
            delivered = True
    except store.InvalidState as exc:
        return fail("FAILED_PRECONDITION", str(exc))
    except (store.StoreError, store.DatabaseFailure) as exc:
        void = ": the token printed is void" if delivered else ""
        return fail("UNAVAILABLE", f"{exc}{void}")
    except OSError as exc:
        _silence_stdout()
        print(f"{BOOTSTRAP}: the token could not be written to stdout "
              f"({exc.strerror or exc}): no admin was created", file=sys.stderr)
        return EXIT_FAILED
    finally:
        store.close_database()
    if not args.json:
        print(f"instance admin {user.name} can sign in with the token above (shown once): "
              "export it as CONVEYOR_TOKEN", file=sys.stderr)
    return EXIT_OK


def _deliver(text: str) -> None:
    """Write ``text`` to stdout and flush: an error surfaces here, not at exit."""
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def _silence_stdout() -> None:
    # What is still buffered for a closed pipe would fail again (with a traceback) when
    # the interpreter flushes stdout at exit.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
