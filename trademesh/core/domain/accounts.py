"""Several accounts at one exchange (docs/accounts.md): an account's venue instance is named
`<exchange>.<account>` ("binance.desk-a"), and that name is the venue everything downstream keys
on (bus streams, the inspector's positions and policies, the ledger's accounts, Studio's
pickers). A venue without an account keeps its plain name ("binance")."""

from __future__ import annotations

import re

from trademesh.core.platform.errors import InvalidArgument, shown

__all__ = ["ACCOUNT_CHARS", "SEPARATOR", "account_name", "account_of", "account_venue", "exchange_of"]

# Between the exchange and the account in a venue name: no exchange name has one.
SEPARATOR = "."
ACCOUNT_CHARS = 24
_ACCOUNT = re.compile(rf"[a-z0-9][a-z0-9-]{{0,{ACCOUNT_CHARS - 1}}}")


def account_name(text: str) -> str:
    """`text` when it can name an account; InvalidArgument naming it (its first characters)."""
    if not _ACCOUNT.fullmatch(text):
        raise InvalidArgument.field(
            "account",
            f"{shown(text)} is not an account name (1-{ACCOUNT_CHARS} of lower-case letters, digits "
            "and -, starting with a letter or digit)",
        )
    return text


def account_venue(exchange: str, account: str | None) -> str:
    """The venue name of `account` at `exchange` ("binance.desk-a"); the exchange's own name
    without one."""
    return exchange if account is None else f"{exchange}{SEPARATOR}{account_name(account)}"


def exchange_of(venue: str) -> str:
    """The exchange a venue name trades at: "binance" of "binance.desk-a" and of "binance"."""
    return venue.partition(SEPARATOR)[0]


def account_of(venue: str) -> str | None:
    """The account a venue name names: "desk-a" of "binance.desk-a"; None of "binance"."""
    _, dot, account = venue.partition(SEPARATOR)
    return account if dot else None
