"""A screen's result worked out from a recorded Binance USD-M session and the screen's file alone,
without the Screener's code: what the Screener, fed the same session through a venue, ingest and
the bars service, must answer (tests/integration/test_screener_replay.py).

It follows the rules as docs/screener.md writes them (the metrics, missing is never zero, the
filters, `rank` and `zscore`, score descending then symbol ascending) and the bars as
docs/bars.md builds them from trades (1s bars by event time, closed once the symbol's latest
trade, less a second, has passed their end). Floats are compared approximately
(`pytest.approx`): the order is exact.
"""

from __future__ import annotations

import itertools
import json
import math
import operator
import re
import statistics
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

__all__ = ["Expected", "Market", "closed_bars", "expected_result", "read_session"]

_LATENESS_MS = 1000  # the bars service's --lateness-ms (its default)
_IDLE_CLOSE_MS = 10_000  # its --idle-close-ms
_QUOTES = ("USDT", "USDC")
_FILTER = re.compile(r"\s*([a-z_0-9]+)\s*(>=|>|<=|<)\s*(\S+)\s*")
_COMPARE = {">=": operator.ge, ">": operator.gt, "<=": operator.le, "<": operator.lt}


@dataclass
class Market:
    """One symbol's last book ticker (bid, bid size, ask, ask size), last 24h quote volume, last
    funding rate and every trade (time ms, id, price, size), as its frames state them."""

    book: tuple[Decimal, Decimal, Decimal, Decimal] | None = None
    quote_volume: Decimal | None = None
    rate: Decimal | None = None
    trades: list[tuple[int, int, Decimal, Decimal]] = field(default_factory=list)


def _symbol(native: str) -> str:
    """The venue's name of a native symbol: SOLUSDT is SOL/USDT:USDT (settled in its quote)."""
    quote = next(q for q in _QUOTES if native.endswith(q))
    return f"{native.removesuffix(quote)}/{quote}:{quote}"


def _quote(symbol: str) -> str:
    return symbol.split("/")[1].split(":")[0]


def read_session(files: Sequence[Path]) -> dict[str, Market]:
    """Every symbol's market as the session's received frames leave it."""
    markets: dict[str, Market] = {}
    for path in files:
        for line in path.read_text().splitlines():
            head, _, text = line.partition(": ")
            if not (head.replace(".", "").isdigit() and text.startswith('{"stream"')):
                continue
            data = json.loads(text)["data"]
            market = markets.setdefault(_symbol(data["s"]), Market())
            if data["e"] == "bookTicker":
                market.book = (Decimal(data["b"]), Decimal(data["B"]), Decimal(data["a"]), Decimal(data["A"]))
            elif data["e"] == "24hrTicker":
                market.quote_volume = Decimal(data["q"])
            elif data["e"] == "markPriceUpdate":
                market.rate = Decimal(data["r"])
            elif data["e"] == "aggTrade":
                market.trades.append((int(data["T"]), int(data["a"]), Decimal(data["p"]), Decimal(data["q"])))
    return markets


def closed_bars(market: Market, venue_last_ms: int) -> list[tuple[Decimal, Decimal]]:
    """The (close, quote volume) of each closed 1s bar of the market's trades, oldest first."""
    if not market.trades:
        return []
    latest = max(t for t, *_ in market.trades)
    watermark = max(latest, venue_last_ms - _IDLE_CLOSE_MS) - _LATENESS_MS
    seconds: dict[int, list[tuple[int, int, Decimal, Decimal]]] = {}
    for trade in market.trades:
        seconds.setdefault(trade[0] // 1000 * 1000, []).append(trade)
    bars = []
    for start in sorted(seconds):
        if start + 1000 <= watermark:
            trades = sorted(seconds[start])
            bars.append((trades[-1][2], sum((p * q for _, _, p, q in trades), Decimal(0))))
    return bars


def _metrics(
    market: Market, bars: list[tuple[Decimal, Decimal]], windows: dict[str, int]
) -> dict[str, float]:
    """Every metric the market's inputs give (a missing one is absent)."""
    out: dict[str, float] = {}
    if market.quote_volume is not None:
        out["volume_24h"] = float(market.quote_volume)
    if market.book is not None:
        bid, bid_size, ask, ask_size = market.book
        if 0 < bid <= ask:
            out["spread_bps"] = float((ask - bid) / ((ask + bid) / 2) * 10_000)
        out["top_depth"] = float(min(bid * bid_size, ask * ask_size))
    if market.rate is not None:
        out["funding_rate"] = float(market.rate)
    closes = [float(close) for close, _ in bars]
    if len(closes) > windows["momentum"]:
        out["momentum"] = closes[-1] / closes[-1 - windows["momentum"]] - 1
    if len(closes) > windows["volatility"]:
        tail = closes[-1 - windows["volatility"] :]
        out["volatility"] = statistics.stdev(math.log(b / a) for a, b in itertools.pairwise(tail))
    if len(bars) >= windows["volume"]:
        out["bar_volume"] = float(sum(volume for _, volume in bars[-windows["volume"] :]))
    return out


def _normalised(how: str, values: list[float]) -> list[float]:
    if how == "rank":  # the percentile rank, ties sharing their average
        if len(values) == 1:
            return [0.5]
        below = [sum(v < x for v in values) for x in values]
        ties = [sum(v == x for v in values) for x in values]
        return [(b + (t - 1) / 2) / (len(values) - 1) for b, t in zip(below, ties, strict=True)]
    mean, spread = statistics.fmean(values), statistics.pstdev(values)
    return [0.0 if spread == 0 else (v - mean) / spread for v in values]


@dataclass(frozen=True)
class Expected:
    """A screen's result: `ranked` rows (rank, symbol, score, metrics) with approximate floats."""

    ranked: list[tuple[int, str, Any, dict[str, Any]]]
    counts: dict[str, Any]  # universe, left_out, filtered_out, missing, top_n


def _near(value: float) -> Any:
    return pytest.approx(value, rel=1e-9, abs=1e-12)


def expected_result(screen_file: Path, markets: dict[str, Market]) -> Expected:
    """The result of the screen in `screen_file` over `markets` (every metric fresh)."""
    screen = tomllib.loads(screen_file.read_text())
    universe = screen.get("universe", {})
    assert set(universe) <= {"quote_assets", "kinds"}, "the oracle reads no other universe keys"
    bar_keys = screen.get("bars", {})
    windows = {key: bar_keys.get(key, 24) for key in ("momentum", "volatility", "volume")}
    filters = [_FILTER.fullmatch(text) for text in screen.get("filters", [])]
    assert all(filters), "a filter the oracle cannot read"
    weights: dict[str, float] = screen["score"]["weights"]
    needed = sorted({m[1] for m in filters if m} | set(weights))
    shown = set(needed) | set(screen.get("show", []))
    venue_last = max((t for m in markets.values() for t, *_ in m.trades), default=0)
    missing = dict.fromkeys(needed, 0)
    left_out = filtered_out = 0
    passed: list[tuple[str, dict[str, float]]] = []
    quotes = universe.get("quote_assets")
    perpetuals = "perpetual" in universe.get("kinds", ["perpetual"])  # every market here is one
    in_universe = [s for s in sorted(markets) if perpetuals and (quotes is None or _quote(s) in quotes)]
    for symbol in in_universe:
        values = _metrics(markets[symbol], closed_bars(markets[symbol], venue_last), windows)
        lacking = [name for name in needed if name not in values]
        for name in lacking:
            missing[name] += 1
        if lacking:
            left_out += 1
        elif all(_COMPARE[m[2]](values[m[1]], float(m[3])) for m in filters if m):
            passed.append((symbol, {k: v for k, v in values.items() if k in shown}))
        else:
            filtered_out += 1
    scores = [0.0] * len(passed)
    for metric, weight in weights.items():
        for index, value in enumerate(_normalised(screen["score"].get("normalise", "rank"),
                                                  [values[metric] for _, values in passed])):  # fmt: skip
            scores[index] += weight * value
    order = sorted(range(len(passed)), key=lambda i: (-scores[i], passed[i][0]))
    ranked = [
        (rank, passed[i][0], _near(scores[i]), {k: _near(v) for k, v in passed[i][1].items()})
        for rank, i in enumerate(order, start=1)
    ]
    counts = {"universe": len(in_universe), "left_out": left_out, "filtered_out": filtered_out,
              "missing": missing, "top_n": screen["top"]}  # fmt: skip
    return Expected(ranked, counts)
