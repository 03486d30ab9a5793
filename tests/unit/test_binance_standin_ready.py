"""When a Binance stand-in's playback may start (BinanceReplay.ready): once ccxt has the depth
snapshots of the books the stand-in holds, and never later for a book it has none of.

A frames-only session whose symbols stream no diff depth (a test's session of tickers, trades and
funding rates: tests/integration/usdm_session.py) has no book of them: their snapshots are refused
(-1121) at once, and waiting for them held every playback back by the longest wait (10 s).
"""

from __future__ import annotations

import json

from trademesh.venues.binance.standin import create_adapter as spot_adapter
from trademesh.venues.binanceusdm.standin import create_adapter as usdm_adapter
from trademesh.venues.replay.adapter import RestRequest
from trademesh.venues.replay.capture import Capture, WsFrame

_DEPTH = {"e": "depthUpdate", "E": 1700000000100, "T": 1700000000099, "s": "BTCUSDT", "U": 11, "u": 12,
          "pu": 10, "b": [["100.5", "2"]], "a": [["101.0", "1"]]}  # fmt: skip
_TICKER = {"e": "bookTicker", "u": 12, "s": "SOLUSDT", "b": "20.1", "B": "5", "a": "20.2", "A": "3",
           "T": 1700000000100, "E": 1700000000101}  # fmt: skip
_BOOKS = {"btcusdt@depth@100ms", "solusdt@depth@100ms"}


def _capture(host: str) -> Capture:
    """One connection: BTCUSDT's diff depth (a book the stand-in makes up), SOLUSDT's book ticker."""
    frames = [("btcusdt@depth@100ms", _DEPTH), ("solusdt@bookTicker", _TICKER)]
    received = [
        WsFrame(1700000000.2 + n, json.dumps({"stream": stream, "data": data}), 0)
        for n, (stream, data) in enumerate(frames)
    ]
    return Capture(ws_urls={0: f"wss://{host}/stream"}, received=received)


def _depth(host_path: str, symbol: str) -> RestRequest:
    return RestRequest("GET", host_path, {"symbol": symbol, "limit": "1000"}, "")


def test_playback_waits_for_the_snapshots_of_the_books_it_holds_only() -> None:
    for adapter, path in (
        (usdm_adapter(_capture("fstream.binance.com")), "fapi.binance.com/fapi/v1/depth"),
        (spot_adapter(_capture("stream.binance.com:9443")), "api.binance.com/api/v3/depth"),
    ):
        assert adapter.ready({"solusdt@depth@100ms", "solusdt@bookticker"}), "no book of it: no wait"
        assert not adapter.ready(_BOOKS), "BTCUSDT's snapshot not fetched yet"
        refused = adapter.rest(_depth(path, "SOLUSDT"))
        assert (refused.status, json.loads(refused.body)["code"]) == (400, -1121)
        assert not adapter.ready(_BOOKS)
        served = adapter.rest(_depth(path, "BTCUSDT"))
        assert served.status == 200 and json.loads(served.body)["lastUpdateId"] == 10
        assert adapter.ready(_BOOKS)
