"""okx-swap: OKX perpetual swaps (BTC-USDT-SWAP on the wire, BTC/USDT:USDT canonical), through ccxt.pro."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from trademesh.venues.live.accounts import account_spec
from trademesh.venues.live.config import load_config
from trademesh.venues.live.venue import LiveVenue
from trademesh.venues.okx_swap.spec import SPEC

if TYPE_CHECKING:
    from trademesh.venues.replay.server import ReplayOptions

__all__ = ["SPEC", "create_venue"]


def create_venue(
    config_path: Path | None,
    replay: ReplayOptions | None = None,
    account: str | None = None,
    symbols: Sequence[str] | None = None,
) -> LiveVenue:
    """The venue (an `account`'s: docs/accounts.md), live or (with `replay`) against its
    stand-in, which only then is imported. `symbols` (`--symbols`) replace its config's."""
    return LiveVenue(account_spec(SPEC, account), load_config(SPEC, config_path, symbols), replay)
