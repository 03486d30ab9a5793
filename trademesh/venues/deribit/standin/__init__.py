"""Deribit's replay stand-in: its JSON-RPC formats and an order store with positions.

Loaded only for `trademesh venue deribit --replay` (trademesh.venues.replay.loader): the connector never
imports it.
"""

from __future__ import annotations

from trademesh.venues.deribit.standin.adapter import DeribitReplay
from trademesh.venues.replay.adapter import ReplayAdapter
from trademesh.venues.replay.capture import Capture

__all__ = ["DeribitReplay", "create_adapter"]


def create_adapter(capture: Capture) -> ReplayAdapter:
    return DeribitReplay(capture)
