"""Coinbase Advanced Trade's replay stand-in: its REST and WebSocket formats and an order store.

Loaded only for `trademesh venue coinbase --replay` (trademesh.venues.replay.loader): the connector never
imports it.
"""

from __future__ import annotations

from trademesh.venues.coinbase.standin.adapter import CoinbaseReplay
from trademesh.venues.replay.adapter import ReplayAdapter
from trademesh.venues.replay.capture import Capture

__all__ = ["CoinbaseReplay", "create_adapter"]


def create_adapter(capture: Capture) -> ReplayAdapter:
    return CoinbaseReplay(capture)
