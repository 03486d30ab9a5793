"""Kraken spot's replay stand-in: v1 captures played to a v2 client, and an order store.

Loaded only for `trademesh venue kraken --replay` (trademesh.venues.replay.loader): the connector never
imports it.
"""

from __future__ import annotations

from trademesh.venues.kraken.standin.adapter import KrakenReplay
from trademesh.venues.replay.adapter import ReplayAdapter
from trademesh.venues.replay.capture import Capture

__all__ = ["KrakenReplay", "create_adapter"]


def create_adapter(capture: Capture) -> ReplayAdapter:
    return KrakenReplay(capture)
