"""Binance USD-M's replay stand-in: Binance's with /fapi, futures answers and the listenKey stream.

Loaded only for `trademesh venue binanceusdm --replay` (trademesh.venues.replay.loader): the connector never
imports it.
"""

from __future__ import annotations

from trademesh.venues.binanceusdm.standin.adapter import BinanceUsdmReplay
from trademesh.venues.replay.adapter import ReplayAdapter
from trademesh.venues.replay.capture import Capture

__all__ = ["BinanceUsdmReplay", "create_adapter"]


def create_adapter(capture: Capture) -> ReplayAdapter:
    return BinanceUsdmReplay(capture)
