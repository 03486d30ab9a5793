"""Every environment variable trademesh reads, in one place.

Secrets come only from the environment; they are never logged, put in an error
or returned by an API.
"""

from __future__ import annotations

import os

__all__ = ["LOG_LEVEL", "TOKEN", "VENUE_CREDENTIALS", "VENUE_SANDBOX", "read_secret", "venue_variable"]

# Log level of every process (DEBUG, INFO, WARNING, ...); INFO when unset.
LOG_LEVEL = "TRADEMESH_LOG_LEVEL"

# Bearer token that services require on every RPC but health and reflection.
# Unset or empty: auth is off (the service logs a loud warning at start).
TOKEN = "TRADEMESH_TOKEN"


def read_secret(name: str) -> str | None:
    value = os.environ.get(name, "")
    return value if value != "" else None


# Live venue credentials: TRADEMESH_<VENUE>_<FIELD>, VENUE upper-cased with "-" as "_"
# (e.g. TRADEMESH_BINANCE_API_KEY, TRADEMESH_OKX_SWAP_PASSPHRASE). FIELD -> the ccxt attribute it sets.
# Without credentials a live venue streams market data and refuses TradeFlow calls.
VENUE_CREDENTIALS = {
    "API_KEY": "apiKey",
    "API_SECRET": "secret",
    "PASSPHRASE": "password",  # OKX; Coinbase's legacy keys
}
# TRADEMESH_<VENUE>_SANDBOX=1 talks to the venue's testnet/sandbox where it has one.
VENUE_SANDBOX = "SANDBOX"


def venue_variable(venue: str, field: str) -> str:
    return f"TRADEMESH_{venue.upper().replace('-', '_')}_{field}"
