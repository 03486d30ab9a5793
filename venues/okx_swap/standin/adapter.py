"""OKX perpetual swaps for the replay stand-in: the same v5 wire formats as spot (okx.standin)."""

from __future__ import annotations

from venues.okx.standin.adapter import OkxReplay

__all__ = ["OkxSwapReplay"]


class OkxSwapReplay(OkxReplay):
    """BTC-USDT-SWAP and friends: instruments come from /public/instruments?instType=SWAP."""
