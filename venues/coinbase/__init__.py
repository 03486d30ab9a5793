"""coinbase: Coinbase Advanced Trade spot (BTC-USD on the wire, BTC/USD canonical), through ccxt.pro."""

from __future__ import annotations

from pathlib import Path

from venues.coinbase.spec import SPEC
from venues.live.config import load_config
from venues.live.venue import LiveVenue
from venues.replay.server import ReplayOptions

__all__ = ["SPEC", "create_venue"]


def create_venue(config_path: Path | None, replay: ReplayOptions | None = None) -> LiveVenue:
    """A Coinbase Advanced Trade spot venue, live or against a replayed session."""
    return LiveVenue(SPEC, load_config(SPEC, config_path), replay)
