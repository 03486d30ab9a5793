"""A market's closed bars from its venue's own candles (MarketData GetCandles), for a context
whose recorded bars are too few: the advisor's warm-up.

The recorder's bars (`latest_bars`) are written by the bars service, which backfills a market's
history from the venue's candles only after the market's first trade. A mesh just started (`up`)
has detectors warmed from GetCandles at once, so a signal may reach the advisor before any bar
of its market is recorded: decided on those it was blocked ("no stop: 0 bar(s), ATR(14) needs
15") though the venue held the history. The context (trademesh.core.advisor.gather) fills its
window from here before the first recorded bar while the recorder holds fewer than the
context's bars; the engine decides on them by its unchanged rules.

Bounded: one call of at most `timeout_s`, asked again only once a new bar may have closed (the
candles after the last kept are asked then). A venue that cannot answer is said once per market
(why, and that the context decides on the bars recorded) until it answers again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from decimal import Decimal

from trademesh.core.domain.convert import TIMEFRAME_TO_PB
from trademesh.core.domain.model import Candle, Timeframe
from trademesh.core.platform.errors import TrademeshError
from trademesh.core.tools.market import MARKETDATA
from trademesh.core.tools.upstream import Upstream
from trademesh.marketdata.v1 import marketdata_pb2 as md

__all__ = ["VenueBarHistory", "filled"]

log = logging.getLogger(__name__)


@dataclass
class _Kept:
    candles: tuple[Candle, ...] = ()
    asked_ns: int = 0  # the wall time of the last answer (0: never answered)
    failing: bool = False  # said in the log, until the venue answers again


def _closed(timeframe: Timeframe, candle: md.Candle) -> Candle:
    return Candle(
        timeframe, candle.open_time_ns, Decimal(candle.open), Decimal(candle.high), Decimal(candle.low),
        Decimal(candle.close), Decimal(candle.volume or "0"), Decimal(candle.quote_volume or "0"),
        candle.trade_count, True,
    )  # fmt: skip


def filled(venue: tuple[Candle, ...], recorded: tuple[Candle, ...], most: int) -> tuple[Candle, ...]:
    """The recorded bars with the venue's candles of the times they hold none (the recorder's
    bar wins where both hold one), oldest first, the last `most`."""
    if not venue:
        return recorded[-most:]
    held = {c.open_time_ns for c in recorded}
    both = [*recorded, *(c for c in venue if c.open_time_ns not in held)]
    both.sort(key=lambda c: c.open_time_ns)
    return tuple(both[-most:])


class VenueBarHistory:
    """The venue's closed candles of the markets the context warms, kept per market."""

    def __init__(self, upstream: Upstream, timeframe: Timeframe, timeout_s: float = 5.0) -> None:
        self._up = upstream
        self.timeframe = timeframe
        self.timeout_s = timeout_s
        self._kept: dict[tuple[str, str], _Kept] = {}

    def drop(self, venue: str, symbol: str) -> None:
        """A market no longer warmed (its recorded bars suffice, or it is not followed)."""
        self._kept.pop((venue, symbol), None)

    async def closed(self, venue: str, symbol: str, most: int, now_ns: int) -> tuple[Candle, ...]:
        """The market's last `most` candles closed by `now_ns`, oldest first: those kept, with
        those closed since asked of the venue when a bar may have closed since its last answer;
        those kept (none at first) when it cannot answer."""
        kept = self._kept.setdefault((venue, symbol), _Kept())
        step, bar_of = self.timeframe.ns, self.timeframe.open_time_ns
        if kept.asked_ns and bar_of(kept.asked_ns) == bar_of(now_ns):
            return kept.candles  # no bar closed since the last answer
        start = kept.candles[-1].open_time_ns + step if kept.candles else now_ns - (most + 1) * step
        request = md.GetCandlesRequest(
            symbol=symbol, timeframe=TIMEFRAME_TO_PB[self.timeframe], start_ns=max(0, start), limit=most + 1
        )
        try:
            answer = await self._up.unary(
                MARKETDATA, venue, "GetCandles", request, md.GetCandlesResponse, timeout_s=self.timeout_s
            )
        except TrademeshError as exc:
            if not kept.failing:
                kept.failing = True
                log.warning(
                    "advisor context: no history of %s %s %s from the venue (%s): deciding on the "
                    "bars recorded so far", venue, symbol, self.timeframe.label, exc,
                    extra={"venue": venue},
                )  # fmt: skip
            return kept.candles
        if kept.failing:
            kept.failing = False
            log.info("advisor context: the history of %s %s from the venue answers again", venue, symbol)
        new = tuple(
            _closed(self.timeframe, c)
            for c in answer.candles
            if c.closed and c.open_time_ns >= start and c.open_time_ns + step <= now_ns
        )
        kept.candles = (kept.candles + new)[-most:]
        kept.asked_ns = now_ns
        return kept.candles
