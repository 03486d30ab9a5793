"""Binance /klines for the replay stand-in: the capture's candles, and synthetic history before them.

A kline row is [open time, open, high, low, close, volume, close time, quote volume,
trades, taker buy base, taker buy quote, "0"], prices as strings; at most `limit` rows
(Binance's default 500, at most 1000) from `startTime`, open times in [startTime, endTime].

Before a symbol's first recorded kline of an interval, the made-up past of the shared candle
history (trademesh.venues.replay.candles, the one the stand-in's aggTrades follow:
trademesh.venues.binance.standin.trades), prices and volumes with the symbol's decimals, the
quote volume to 8 decimals and half the volume taken by buyers; a symbol the capture shows no
price of (only klines) gets a slow zig-zag around 1.0 instead. A symbol the capture shows nothing
of (exchangeInfo lists it: Binance has klines of every listed symbol) gets that zig-zag too, up
to the last candle closed by the stand-in's clock (the session's last frame).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Mapping
from decimal import ROUND_DOWN, Decimal
from typing import Any

from trademesh.core.domain.model import Timeframe
from trademesh.venues.replay.candles import CandleHistory, Grid, session_span
from trademesh.venues.replay.capture import Capture

__all__ = ["KlineHistory"]

# Binance's kline intervals that are our timeframes share their labels ("1s" ... "1w"), and
# their open times (weeks on Mondays).
_INTERVALS = {tf.label: tf for tf in Timeframe}
_QUOTE = Decimal("0.00000001")


class KlineHistory:
    def __init__(
        self, capture: Capture, past: Callable[[], Mapping[str, CandleHistory]] | None = None
    ) -> None:
        self._past = past or dict  # each symbol's candle history (its made-up past before the session)
        self._clock_ms = session_span(capture)[1]  # the stand-in's clock stops at the last frame
        # (symbol, interval) -> open time -> row: the last state the capture streamed.
        self.recorded: dict[tuple[str, str], dict[int, list[Any]]] = {}
        for frame in capture.received:
            if '"kline"' in frame.text and frame.text.startswith("{"):
                with contextlib.suppress(ValueError, KeyError, TypeError):  # the tally counts bad frames
                    self._record(json.loads(frame.text))

    def _record(self, message: dict[str, Any]) -> None:
        """A kline event's last state (combined-stream or raw-stream frame, any key order)."""
        event = message.get("data", message)
        if not isinstance(event, dict) or event.get("e") != "kline":
            return
        k = event["k"]
        row = [k["t"], k["o"], k["h"], k["l"], k["c"], k["v"], k["T"], k["q"], k["n"], k["V"], k["Q"], "0"]
        self.recorded.setdefault((k["s"], k["i"]), {})[k["t"]] = row

    def page(self, query: Mapping[str, str]) -> list[list[Any]]:
        symbol, interval = query.get("symbol", ""), query.get("interval", "1m")
        frame = _INTERVALS.get(interval, Timeframe.M1)
        step = frame.value * 1000
        recorded = self.recorded.get((symbol, interval), {})
        first_recorded = min(recorded, default=None)
        limit = min(int(query.get("limit", "500")), 1000)
        start = int(query.get("startTime", "0"))
        start = frame.open_time_ns(start * 1_000_000) // 1_000_000
        end = int(query.get("endTime", str(max(recorded, default=start) + step)))
        if first_recorded is None and symbol not in self._past():
            # Nothing of it in the capture: the zig-zag, to the last candle closed by the clock.
            closed_end = frame.open_time_ns(self._clock_ms * 1_000_000) // 1_000_000 - step
            end = min(int(query.get("endTime", str(closed_end))), closed_end, start + (limit - 1) * step)
            return [_synthetic(t, step) for t in range(start, end + 1, step)]
        rows: list[list[Any]] = []
        for open_time in range(start, end + 1, step):
            if len(rows) == limit:
                break
            if open_time in recorded:
                rows.append(recorded[open_time])
            elif first_recorded is not None and open_time < first_recorded:
                rows.append(self._made_up(symbol, frame, open_time))
        return rows

    def _made_up(self, symbol: str, frame: Timeframe, open_time: int) -> list[Any]:
        step = frame.value * 1000
        history = self._past().get(symbol)
        grid = Grid(step, frame.open_time_ns(0) // 1_000_000 % step)
        candle = history.candle(grid, open_time) if history is not None else None
        if history is None or candle is None or not candle.made_up:
            return _synthetic(open_time, step)
        size_unit = Decimal(1).scaleb(history.size_unit.as_tuple().exponent)  # type: ignore[arg-type]
        taker = (candle.volume / 2).quantize(size_unit, rounding=ROUND_DOWN)
        quote = candle.notional.quantize(_QUOTE)
        return [
            open_time,
            *(format(price, "f") for price in (candle.open, candle.high, candle.low, candle.close)),
            format(candle.volume, "f"),
            open_time + step - 1,
            format(quote, "f"),
            candle.trades,
            format(taker, "f"),
            format((quote / 2).quantize(_QUOTE, rounding=ROUND_DOWN), "f"),
            "0",
        ]


def _text(ticks: int) -> str:
    return f"{ticks / 10_000:.8f}"


def _synthetic(open_time: int, step: int) -> list[Any]:
    """A made-up but well-formed candle: a slow zig-zag around 1.0000 (low <= open, close <= high)."""
    wave = (open_time // step) % 40
    base = 10_000 + (wave if wave < 20 else 40 - wave) * 5
    o, c = base, base + (3 if wave % 2 else -3)
    return [
        open_time,
        _text(o),
        _text(max(o, c) + 2),
        _text(min(o, c) - 2),
        _text(c),
        "100.00000000",
        open_time + step - 1,
        "100.00000000",
        10,
        "50.00000000",
        "50.00000000",
        "0",
    ]
