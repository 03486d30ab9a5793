"""The stand-in's open interest, as Binance USD-M's GET /fapi/v1/openInterest answers it.

GET /fapi/v1/openInterest?symbol= (public; ccxt's fetch_open_interest) answers
{"openInterest": "<base quantity>", "symbol": "<symbol>", "time": <ms>}: the contracts open, in
the base asset, at `time` (https://developers.binance.com/docs/derivatives/usds-margined-futures/
market-data/rest-api/Open-Interest); -1121 "Invalid symbol." for a symbol the capture streams
nothing of, and -1102 without `symbol`.

The capture records no open interest, so it is made up from the replay, deterministically: each
symbol starts from a figure of its own (a hash of its name, 10,000 to 99,999 base units) and
grows by every aggTrade quantity replayed so far; `time` is the last replayed trade's (the
session's start before the first). So a poll during the replay sees it change, and a test can
compute it from the capture.
"""

from __future__ import annotations

import json
import zlib
from decimal import Decimal

from trademesh.venues.replay.adapter import RestAnswer
from trademesh.venues.replay.capture import WsFrame

__all__ = ["OpenInterestBook", "start_of"]


def start_of(symbol: str) -> Decimal:
    """A symbol's made-up open interest before the replay's first trade of it."""
    return Decimal(10_000 + zlib.crc32(symbol.encode()) % 90_000)


class OpenInterestBook:
    """Every symbol's open interest at the replay position (see the module's docstring)."""

    def __init__(self, symbols: list[str], start_ms: int) -> None:
        self.sizes = {symbol: start_of(symbol) for symbol in symbols}
        self.times = dict.fromkeys(symbols, start_ms)

    def delivered(self, frame: WsFrame, topic: str) -> None:
        """A replayed frame: an aggTrade's quantity adds to its symbol's open interest."""
        if "@aggtrade" not in topic:
            return
        message = json.loads(frame.text)
        event = message.get("data", message)
        symbol = str(event.get("s"))
        if symbol in self.sizes:
            self.sizes[symbol] += Decimal(str(event.get("q", "0")))
            self.times[symbol] = int(event.get("T") or event.get("E") or self.times[symbol])

    def answer(self, symbol: str) -> RestAnswer:
        if not symbol:
            return RestAnswer.json({"code": -1102, "msg": "Mandatory parameter 'symbol' was not sent."}, 400)
        if symbol not in self.sizes:
            return RestAnswer.json({"code": -1121, "msg": "Invalid symbol."}, 400)
        size = self.sizes[symbol]
        return RestAnswer.json({"openInterest": f"{size:f}", "symbol": symbol, "time": self.times[symbol]})
