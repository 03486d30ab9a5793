"""A many-symbol Binance USD-M session, written for a test in the venue's own wire format.

Every recorded capture holds a few symbols (fixtures/exchange-captures: 4 perpetuals on Binance
USD-M, 10 pairs on Kraken, 10 options on Deribit), and their event times are of 2021: a screen
reads no input older than its `max_age_s` (a day at most), so none of them could rank anything
now. This writes a session of 41 perpetuals as Binance's USD-M futures WebSocket market streams
send them (combined streams, `{"stream": ..., "data": ...}`;
https://developers.binance.com/docs/derivatives/usds-margined-futures/websocket-market-streams),
stamped in the last minute:

- `<symbol>@aggTrade` (*Aggregate Trade Streams*): one trade a second for `bars` seconds, then
  one more two and a half seconds later (it closes the bars before it: docs/bars.md, the
  watermark);
- `<symbol>@bookTicker` (*Individual Symbol Book Ticker Streams*), `<symbol>@ticker` (*Individual
  Symbol Ticker Streams*, `24hrTicker`: the 24h base and quote volumes) and
  `<symbol>@markPrice@1s` (*Mark Price Stream*: the funding rate), each at the start and again
  after the last trade: the first with a wider spread, less volume and another rate than the
  last, so that a screen that ranked by anything but the newest would rank otherwise.

The capture holds frames only, one connection to fstream.binance.com: the stand-in makes up the
exchangeInfo ccxt loads from the symbols the frames stream (trademesh/venues/replay/synthesis.py,
docs/replay.md "Sessions from other recorders"). Seeded: the same seed writes the same frames,
only their times follow the clock.
"""

from __future__ import annotations

import dataclasses
import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

__all__ = ["PERPETUALS", "Perpetual", "write_session"]

SEED = 4242
_PLACES = Decimal("0.00001")  # prices are written with 5 decimals
_SIZE = Decimal("0.001")
_BARS = 8  # one trade a second for this many seconds: 8 closed 1s bars
_NEXT_FUNDING_MS = 8 * 3_600_000  # funding every 8 h: the next is the next multiple of it
_LATE_S = _BARS + 3  # the last tickers and rates come this long after the start (after the trades)


@dataclass(frozen=True)
class Perpetual:
    """One symbol of the session and what its frames are made of."""

    native: str  # "SOLUSDT"
    price: Decimal  # the first trade's
    drift: float  # mean return a second
    spread_bps: int  # of the last bookTicker
    quote_volume: Decimal  # 24h, in the quote asset, of the last 24hrTicker
    rate: str  # the funding rate of the last markPriceUpdate
    seed: int  # of its own random draws (prices, sizes, ids): a twin writes the same frames
    bars: int = _BARS  # seconds with a trade (0: none)


def _normal(rng: random.Random, native: str, **changes: Any) -> Perpetual:
    fields: dict[str, Any] = {
        "price": Decimal(rng.uniform(1, 500)).quantize(_PLACES),
        "drift": rng.uniform(-0.004, 0.008),
        "spread_bps": rng.randint(1, 8),
        "quote_volume": Decimal(rng.randint(6_000_000, 900_000_000)),
        "rate": f"{rng.uniform(-0.0003, 0.0006):.8f}",
        "seed": rng.randrange(2**32),
    }
    fields.update(changes)
    return Perpetual(native=native, **fields)


def _perpetuals(seed: int) -> tuple[Perpetual, ...]:
    """41 perpetuals: 31 USDT ones that rank (two of them alike but for their names), 3 of too
    little volume and 2 of too wide a spread (filtered out), 2 with three trades and 1 with
    none (too few bars), and 2 quoted in USDC (outside a USDT screen's universe)."""
    rng = random.Random(seed)
    bases = ["BTC", "ETH", "BNB", "SOL", "XRP", "DOGE", "ADA", "AVAX", "LINK", "DOT", "LTC", "BCH",
             "TRX", "ATOM", "NEAR", "APT", "ARB", "OP", "FIL", "ETC", "UNI", "AAVE", "SUI", "INJ",
             "TIA", "SEI", "RUNE", "ALGO", "XLM", "HBAR"]  # fmt: skip
    out = [_normal(rng, f"{base}USDT") for base in bases]
    out.append(dataclasses.replace(out[bases.index("FIL")], native="FLOWUSDT"))  # FIL's twin: equal scores
    out += [_normal(rng, f"{base}USDT", quote_volume=Decimal(rng.randint(100_000, 4_000_000)))
            for base in ("VET", "SAND", "MANA")]  # fmt: skip
    out += [_normal(rng, f"{base}USDT", spread_bps=rng.randint(20, 60)) for base in ("AXS", "GALA")]
    out += [_normal(rng, f"{base}USDT", bars=3) for base in ("CRV", "LDO")]
    out.append(_normal(rng, "DYDXUSDT", bars=0))
    out += [_normal(rng, f"{base}USDC") for base in ("BTC", "ETH")]
    return tuple(out)


PERPETUALS = _perpetuals(SEED)


def _frame(at_ms: int, stream: str, data: dict[str, Any]) -> tuple[int, str]:
    text = json.dumps({"stream": stream, "data": data}, separators=(",", ":"))
    return at_ms, f"{at_ms / 1000:.3f}: {text}"


class _Writer:
    """One symbol's frames."""

    def __init__(self, perpetual: Perpetual, index: int, start_ms: int) -> None:
        self.p, self.rng = perpetual, random.Random(perpetual.seed)
        self.lower = perpetual.native.lower()
        self.start_ms = start_ms + index * 7  # the symbols' frames interleave, a few ms apart
        self.next_funding_ms = (start_ms // _NEXT_FUNDING_MS + 1) * _NEXT_FUNDING_MS
        self.trade_id = self.rng.randrange(10**8, 10**9)
        self.update_id = self.rng.randrange(10**11, 10**12)
        self.last = perpetual.price

    def frames(self) -> Iterator[tuple[int, str]]:
        """Its first state, its trades, its last state (the module's docstring)."""
        first, late = self.start_ms + 100, self.start_ms + _LATE_S * 1000 + 100
        yield from self._state(first, self.p.spread_bps + 3, self.p.quote_volume * Decimal("0.98"), "0.0001")
        closes = [self.p.price]
        for _ in range(max(self.p.bars - 1, 0)):
            step = self.p.drift + self.rng.gauss(0, 0.004)
            closes.append((closes[-1] * Decimal(1 + step)).quantize(_PLACES))
        for second, close in enumerate(closes if self.p.bars else []):
            yield self._trade(self.start_ms + second * 1000 + 300, close)
        if self.p.bars:  # closes the bars before it (the bars service's watermark: 1 s behind)
            yield self._trade(self.start_ms + (self.p.bars + 2) * 1000 + 500, closes[-1])
        yield from self._state(late, self.p.spread_bps, self.p.quote_volume, self.p.rate)

    def _trade(self, at_ms: int, price: Decimal) -> tuple[int, str]:
        self.trade_id += 1
        self.last = price
        size = (Decimal(self.rng.uniform(0.5, 50)) * 10).quantize(_SIZE)
        data = {"e": "aggTrade", "E": at_ms + 2, "a": self.trade_id, "s": self.p.native, "p": str(price),
                "q": str(size), "f": self.trade_id * 3, "l": self.trade_id * 3 + 1, "T": at_ms,
                "m": self.rng.random() < 0.5}  # fmt: skip
        return _frame(at_ms + 5, f"{self.lower}@aggTrade", data)

    def _state(self, at_ms: int, spread_bps: int, volume: Decimal, rate: str) -> Iterator[tuple[int, str]]:
        """A bookTicker around the last price, a 24hrTicker and a markPriceUpdate, in that order."""
        half = self.last * spread_bps / 20_000
        bid, ask = (self.last - half).quantize(_PLACES), (self.last + half).quantize(_PLACES)
        self.update_id += 17
        sizes = [Decimal(self.rng.uniform(1, 900)).quantize(_SIZE) for _ in range(2)]
        book = {"e": "bookTicker", "u": self.update_id, "s": self.p.native, "b": str(bid), "B": str(sizes[0]),
                "a": str(ask), "A": str(sizes[1]), "T": at_ms, "E": at_ms + 1}  # fmt: skip
        yield _frame(at_ms + 3, f"{self.lower}@bookTicker", book)
        base = (volume / self.last).quantize(_SIZE)
        at_ms += 200
        open_price = (self.p.price * Decimal("0.97")).quantize(_PLACES)
        last, high, low = str(self.last), str(max(self.last, open_price)), str(min(self.last, open_price))
        stats = {"e": "24hrTicker", "E": at_ms, "s": self.p.native, "p": str(self.last - open_price),
                 "P": "3.000", "w": last, "c": last, "Q": "1.000", "o": str(open_price), "h": high, "l": low,
                 "v": str(base), "q": str(volume), "O": at_ms - 86_400_000, "C": at_ms,
                 "F": self.trade_id - 5000, "L": self.trade_id, "n": 5001}  # fmt: skip
        yield _frame(at_ms + 3, f"{self.lower}@ticker", stats)
        at_ms += 200
        mark = (self.last * Decimal("1.0001")).quantize(Decimal("0.00000001"))
        funding = {"e": "markPriceUpdate", "E": at_ms, "s": self.p.native, "p": str(mark), "i": last,
                   "P": str(mark), "r": rate, "T": self.next_funding_ms}  # fmt: skip
        yield _frame(at_ms + 3, f"{self.lower}@markPrice@1s", funding)


def write_session(directory: Path, start_ms: int, prefix: str = "USDM_MANY") -> list[Path]:
    """Write the session's one connection file (`<prefix>.ws.1.0`) into `directory`, its first
    frame at `start_ms` (a whole second: the trades fall 300 ms into each second); its files."""
    frames = sorted(
        (frame for index, p in enumerate(PERPETUALS) for frame in _Writer(p, index, start_ms).frames()),
        key=lambda frame: frame[0],
    )
    streams = "/".join(f"{p.native.lower()}@{kind}" for p in PERPETUALS
                       for kind in ("aggTrade", "bookTicker", "ticker", "markPrice@1s"))  # fmt: skip
    opened = f"wss://fstream.binance.com/stream?streams={streams} <-> {(start_ms - 500) / 1000:.3f}"
    path = directory / f"{prefix}.ws.1.0"
    path.write_text("\n".join([opened, *(text for _, text in frames)]) + "\n")
    return [path]
