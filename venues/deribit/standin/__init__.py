"""Deribit's replay stand-in: its JSON-RPC formats and an order store with positions.

Loaded only for `trademesh venue deribit --replay` (venues.replay.loader): the connector never
imports it.
"""

from __future__ import annotations

from venues.deribit.standin.adapter import DeribitReplay
from venues.replay.adapter import ReplayAdapter
from venues.replay.capture import Capture

__all__ = ["DeribitReplay", "create_adapter"]


def create_adapter(capture: Capture) -> ReplayAdapter:
    return DeribitReplay(capture)
