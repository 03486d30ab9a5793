"""`trademesh keys create|list|scopes|revoke`: the gateway's named API keys, in PostgreSQL.

`create` prints the new key alone on stdout (so `KEY=$(trademesh keys create ci)` works) and
its note on stderr: the key is shown this once and never logged. A key gets the scopes named
with --scope (repeatable), else `read` alone; `scopes` changes a live key's scopes.
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from trademesh.core.platform.access.contracts import Scope
    from trademesh.gateway.auth.store import KeyStore

__all__ = ["DEFAULT_SCOPES", "add_keys_parser"]

# What a key made without --scope may do: look, never act.
DEFAULT_SCOPES = ("read",)


def _key_name(value: str) -> str:
    from trademesh.core.platform.errors import InvalidArgument
    from trademesh.gateway.auth.keys import check_name

    try:
        return check_name(value)
    except InvalidArgument as exc:
        raise argparse.ArgumentTypeError(exc.violations[0].description) from None


def _scope(value: str) -> Scope:
    from trademesh.core.platform.errors import InvalidArgument
    from trademesh.gateway.auth.keys import check_scope_name

    try:
        return check_scope_name(value)
    except InvalidArgument as exc:
        raise argparse.ArgumentTypeError(exc.violations[0].description) from None


def _add_scope_option(parser: argparse.ArgumentParser, help_text: str) -> None:
    parser.add_argument(
        "--scope", dest="scopes", type=_scope, action="append", metavar="SCOPE", help=help_text
    )


def add_keys_parser(commands: Any) -> None:
    keys = commands.add_parser("keys", help="create, list, scope and revoke the gateway's API keys")
    actions = keys.add_subparsers(dest="action", required=True)
    database = argparse.ArgumentParser(add_help=False)
    database.add_argument(
        "--database-url",
        help="PostgreSQL (default: $DATABASE_URL, else postgresql://postgres@127.0.0.1:5432/postgres)",
    )
    create = actions.add_parser("create", parents=[database], help="make a key; it is printed once")
    create.add_argument("name", type=_key_name, help="the key's name: a-z, 0-9, '_', '.', '-' (max 63)")
    _add_scope_option(
        create, "what the key may do: read, trade, admin or close_all; repeat for more (default: read)"
    )
    create.set_defaults(run=_run, action_run=_create)
    listing = actions.add_parser("list", parents=[database], help="every key: name, created, revoked, scopes")
    listing.set_defaults(run=_run, action_run=_list)
    scopes = actions.add_parser(
        "scopes", parents=[database], help="set a live key's scopes (its Studio sessions' too)"
    )
    scopes.add_argument("name", type=_key_name, help="the key's name")
    _add_scope_option(scopes, "read, trade, admin or close_all; repeat for more (at least one)")
    scopes.set_defaults(run=_run, action_run=_set_scopes)
    revoke = actions.add_parser("revoke", parents=[database], help="stop a key (and its Studio sessions)")
    revoke.add_argument("name", type=_key_name, help="the key's name")
    revoke.set_defaults(run=_run, action_run=_revoke)


def _run(args: argparse.Namespace) -> None:
    import uvloop

    from trademesh.core.platform.config.env import database_url
    from trademesh.gateway.auth.store import KeyStore

    async def main() -> None:
        store = await KeyStore.open(database_url(args.database_url))
        try:
            await args.action_run(store, args)
        finally:
            await store.close()

    uvloop.run(main())


def _shown(scopes: frozenset[Scope]) -> str:
    return ",".join(sorted(scope.value for scope in scopes)) or "-"


async def _create(store: KeyStore, args: argparse.Namespace) -> None:
    from trademesh.core.platform.access.contracts import Scope

    scopes = frozenset(args.scopes or [Scope(name) for name in DEFAULT_SCOPES])
    key = await store.create(args.name, scopes)
    print(key, flush=True)
    print(
        f"created key {args.name!r} with scopes {_shown(scopes)}: it is shown this once, keep it now",
        file=sys.stderr,
    )


def _when(moment: datetime | None) -> str:
    return "-" if moment is None else moment.astimezone().isoformat(timespec="seconds")


async def _list(store: KeyStore, args: argparse.Namespace) -> None:
    records = await store.records()
    width = max([4, *(len(record.name) for record in records)])
    print(f"{'NAME':<{width}}  {'CREATED':<25}  {'REVOKED':<25}  SCOPES")
    for record in records:
        when = f"{_when(record.created_at):<25}  {_when(record.revoked_at):<25}"
        print(f"{record.name:<{width}}  {when}  {_shown(record.scopes)}")


async def _set_scopes(store: KeyStore, args: argparse.Namespace) -> None:
    from trademesh.core.platform.errors import InvalidArgument

    if not args.scopes:
        raise InvalidArgument.field(
            "scope", "none given: name at least one with --scope (read, trade, admin, close_all)"
        )
    record = await store.set_scopes(args.name, args.scopes)
    print(f"key {record.name!r} now has scopes {_shown(record.scopes)}")


async def _revoke(store: KeyStore, args: argparse.Namespace) -> None:
    record = await store.revoke(args.name)
    print(f"revoked key {record.name!r} at {_when(record.revoked_at)}")
