"""Binance spot's replay stand-in: its REST and WebSocket formats, an order store, candle history.

Loaded only for `trademesh venue binance --replay` (trademesh.venues.replay.loader): the connector never
imports it.
"""

from __future__ import annotations

from trademesh.venues.binance.standin.adapter import BinanceReplay
from trademesh.venues.replay.adapter import ReplayAdapter
from trademesh.venues.replay.capture import Capture

__all__ = ["BinanceReplay", "create_adapter"]


def create_adapter(capture: Capture) -> ReplayAdapter:
    return BinanceReplay(capture)
