"""OKX swaps' replay stand-in: OKX's v5 formats and order store, for SWAP instruments.

Loaded only for `trademesh venue okx-swap --replay` (trademesh.venues.replay.loader): the connector never
imports it.
"""

from __future__ import annotations

from trademesh.venues.okx_swap.standin.adapter import OkxSwapReplay
from trademesh.venues.replay.adapter import ReplayAdapter
from trademesh.venues.replay.capture import Capture

__all__ = ["OkxSwapReplay", "create_adapter"]


def create_adapter(capture: Capture) -> ReplayAdapter:
    return OkxSwapReplay(capture)
