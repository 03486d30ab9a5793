"""The live detector's ear on Overwatch: the regime changes on the bus stream `regimes.1m`
(bus.v1.RegimeChanges, trademesh.core.platform.bus.names.regimes_stream), turned into RegimeValue
events and handed to the runner, which feeds them to the patches' `regime` sources.

At start the stream is read backwards from its newest entry until the latest change of every
market a patch's regime source names is found (or the stream's start is reached): Overwatch
writes a change only when a regime changes, so without this a patch would read no regime
until its market's next change, which comes about every 50 bars. The markets found are heard
at once; then the stream is followed from the newest entry of that read, so no change falls
between the two. Overwatch publishes every market's regime at least once (a market's first
regime when it leads and is warm: trademesh.core.overwatch.resume), so a market is missing only while
Overwatch warms it, or when its last change is older than the stream's week: it then stays
without a regime until its next change.

The detector reads the stream, not Overwatch's code (the services meet through contracts): the
wire's regime codes are mapped here. Redis away: said once, retried with backoff; the sources
keep their last values meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence

from trademesh.core.detector.engine.io import Event, RegimeValue
from trademesh.core.detector.metrics import REGIMES
from trademesh.core.detector.modules.sources import REGIME_TIMEFRAME
from trademesh.core.domain.convert import TIMEFRAME_TO_PB
from trademesh.core.domain.model import Timeframe
from trademesh.core.domain.regime import Regime
from trademesh.core.platform.bus.codec import decode
from trademesh.core.platform.bus.follow import read_on
from trademesh.core.platform.bus.names import regimes_stream
from trademesh.core.platform.bus.reads import read_after, read_back
from trademesh.core.platform.bus.redis import BusRedis
from trademesh.core.platform.errors import Corrupt
from trademesh.overwatch.v1 import overwatch_pb2 as ow

__all__ = ["REGIME_FROM_PB", "RegimeFeed", "regime_values"]

log = logging.getLogger(__name__)

REGIME_FROM_PB: dict[int, Regime] = {
    ow.REGIME_UNKNOWN: Regime.UNKNOWN,
    ow.REGIME_TREND_UP: Regime.TREND_UP,
    ow.REGIME_TREND_DOWN: Regime.TREND_DOWN,
    ow.REGIME_RANGE: Regime.RANGE,
    ow.REGIME_HIGH_VOLATILITY: Regime.HIGH_VOLATILITY,
    ow.REGIME_THIN_LIQUIDITY: Regime.THIN_LIQUIDITY,
}
# Any of Redis's errors is retried, not only a connection's: the feed must not end quietly (a
# key of another type where the stream should be is said and tried again).
_START = "0-0"

Market = tuple[str, str]  # (venue, symbol)


def regime_values(fields: dict[bytes, bytes], timeframe: Timeframe = REGIME_TIMEFRAME) -> list[RegimeValue]:
    """The changes of one stream entry of the timeframe as events, in their order (an entry that
    is no Envelope of regime changes is Corrupt; a change of an unknown code is skipped)."""
    envelope = decode(fields)
    if envelope.WhichOneof("body") != "regimes":
        raise Corrupt(f"an entry of {envelope.WhichOneof('body')}, not regime changes")
    wanted = TIMEFRAME_TO_PB[timeframe]
    values = []
    for change in envelope.regimes.changes:
        regime = REGIME_FROM_PB.get(change.regime)
        if change.timeframe == wanted and regime is not None:
            values.append(RegimeValue(change.venue, change.symbol, regime, change.since_ns, change.at_ns))
    return values


class RegimeFeed:
    def __init__(
        self,
        redis: BusRedis,
        hear: Callable[[Sequence[Event]], None],
        wanted: Callable[[], set[Market]],
        block_ms: int = 1000,
        page: int = 1000,
    ) -> None:
        self._redis = redis
        self.hear = hear
        self.wanted = wanted  # the markets of the patches' regime sources
        self.stream = regimes_stream(REGIME_TIMEFRAME)
        self._block_ms, self._page = block_ms, page
        self.position: str | None = None  # the last entry read; None before the start's read
        self.undecodable = 0

    async def run(self, stop: asyncio.Event) -> None:
        await read_on(self._read_once, stop, self._away, back=self._back)

    async def _read_once(self) -> None:
        if self.position is None:
            await self.latest()
        await self.follow_once()

    def _away(self, exc: Exception, delay: float, first: bool) -> None:
        if first:
            log.warning("detector: the regimes on %s: Redis: %s (retrying)", self.stream, exc)

    def _back(self) -> None:
        log.info("detector: the regimes on %s are heard again", self.stream)

    async def latest(self) -> None:
        """Each wanted market's latest regime, from the newest entries back; the position to
        follow from set to the newest entry."""
        wanted = self.wanted()
        found: dict[Market, RegimeValue] = {}
        newest, before = None, "+"
        while True:
            entries = await read_back(self._redis, self.stream, max=before, count=self._page)
            for raw_id, fields in entries:
                entry_id = _text(raw_id)
                newest = newest or entry_id
                for value in reversed(self._values(entry_id, fields)):  # the latest first
                    found.setdefault((value.venue, value.symbol), value)
            if len(entries) < self._page or wanted <= set(found):
                break
            before = "(" + _text(entries[-1][0])  # exclusive: the entries older than the last read
        self.position = newest or _START
        heard = [found[market] for market in sorted(found)]
        missing = sorted(wanted - set(found))
        log.info(
            "detector: %d regimes from %s at start%s", len(heard), self.stream,
            f"; none yet for {', '.join('/'.join(m) for m in missing)}" if missing else "",
        )  # fmt: skip
        REGIMES.labels("start").inc(len(heard))
        if heard:
            self.hear(heard)

    async def follow_once(self) -> None:
        """The entries after the position (waiting up to block_ms for some), heard in order."""
        assert self.position is not None
        reply = await read_after(
            self._redis, {self.stream: self.position}, count=self._page, block=self._block_ms
        )
        heard: list[Event] = []
        for _, entries in reply or ():
            for raw_id, fields in entries:
                entry_id = _text(raw_id)
                self.position = entry_id
                heard += self._values(entry_id, fields)
        if heard:
            REGIMES.labels("live").inc(len(heard))
            self.hear(heard)

    def _values(self, entry_id: str, fields: dict[bytes, bytes]) -> list[RegimeValue]:
        try:
            return regime_values(fields)
        except Corrupt as exc:
            self.undecodable += 1
            REGIMES.labels("skipped").inc()
            log.warning("detector: %s entry %s skipped: %s", self.stream, entry_id, exc)
            return []


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
