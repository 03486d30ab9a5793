"""Binance USD-M futures' wire formats for the replay stand-in (venues.binance.replay with /fapi).

What differs from spot:
- REST lives under /fapi/v1 (exchangeInfo, depth) on fapi.binance.com; depth snapshots
  carry "E" (event time) and "T" (transaction time) besides lastUpdateId, bids and asks.
- WebSocket (fstream.binance.com) depthUpdate events carry `pu`, the previous event's `u`
  (update ids are not contiguous). ccxt's linear rule: after a snapshot with lastUpdateId N,
  drop events with u < N, apply the first with U <= N <= u (or pu == N), then every event
  must have pu equal to the previous u, else the book is resynced from a new snapshot.
  The inherited DepthBook keeps lastUpdateId at the last replayed event's u, so a snapshot
  served mid-replay links to the next event through pu == N.
- bookTicker and aggTrade events carry "e", "E" and "T"; klines are as on spot.
"""

from __future__ import annotations

from venues.binance.replay import BinanceReplay

__all__ = ["BinanceUsdmReplay"]


class BinanceUsdmReplay(BinanceReplay):
    api_prefix = "/fapi/v1/"
