"""Every venue trademesh can run, by name: one line per venue.

A venue module exposes `create_venue(config_path: Path | None, replay: ReplayOptions | None,
account: str | None) -> Venue` (an account's instance: docs/accounts.md).
Modules load lazily, so starting one venue never imports another's dependencies.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from core.foundations.errors import NotFound
from venues.runtime.venue import Venue

if TYPE_CHECKING:
    from venues.replay.server import ReplayOptions

__all__ = ["VENUES", "VenueEntry", "create_venue"]


@dataclass(frozen=True)
class VenueEntry:
    name: str
    module: str
    default_port: int
    summary: str


VENUES: dict[str, VenueEntry] = {
    entry.name: entry
    for entry in [
        VenueEntry(
            "sim", "venues.sim", 5070, "built-in exchange: synthetic market, price-time matching engine"
        ),
        VenueEntry("binance", "venues.binance", 5060, "Binance spot (ccxt.pro)"),
        VenueEntry("bybit", "venues.bybit", 5061, "Bybit spot (ccxt.pro)"),
        VenueEntry("kraken", "venues.kraken", 5062, "Kraken spot (ccxt.pro)"),
        VenueEntry("okx", "venues.okx", 5063, "OKX spot (ccxt.pro)"),
        VenueEntry("coinbase", "venues.coinbase", 5064, "Coinbase Advanced Trade spot (ccxt.pro)"),
        VenueEntry("binanceusdm", "venues.binanceusdm", 5065, "Binance USD-M perpetuals (ccxt.pro)"),
        VenueEntry("okx-swap", "venues.okx_swap", 5068, "OKX perpetual swaps (ccxt.pro)"),
        VenueEntry("deribit", "venues.deribit", 5081, "Deribit derivatives (ccxt.pro)"),
    ]
}


def create_venue(
    name: str, config_path: Path | None, replay: ReplayOptions | None = None, account: str | None = None
) -> Venue:
    """The venue `name`, or one `account` of it, named `<name>.<account>` (docs/accounts.md)."""
    entry = VENUES.get(name)
    if entry is None:
        raise NotFound(f"unknown venue {name!r}; known venues: {', '.join(sorted(VENUES))}")
    module = importlib.import_module(entry.module)
    venue: Venue = module.create_venue(config_path, replay, account)
    return venue
