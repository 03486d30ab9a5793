"""OKX spot's replay stand-in: its v5 REST and WebSocket formats and an order store.

Loaded only for `trademesh venue okx --replay` (trademesh.venues.replay.loader): the connector never
imports it.
"""

from __future__ import annotations

from trademesh.venues.okx.standin.adapter import OkxReplay
from trademesh.venues.replay.adapter import ReplayAdapter
from trademesh.venues.replay.capture import Capture

__all__ = ["OkxReplay", "create_adapter"]


def create_adapter(capture: Capture) -> ReplayAdapter:
    return OkxReplay(capture)
