"""Each venue's price grid: the tick sizes a protective order's price is rounded to before placing
(trademesh.core.inspector.grid). They come from the venue's ListInstruments, asked once per venue
(again after a failure); the same answer gives the core its instrument facts (minimum size and
notional, lot size: trademesh.core.inspector.runtime journals them)."""

from __future__ import annotations

import logging
from decimal import Decimal

from trademesh.common.v1 import common_pb2 as common
from trademesh.core.inspector.venues import VenueLinks
from trademesh.marketdata.v1 import marketdata_pb2 as md

__all__ = ["TickSizes"]

log = logging.getLogger(__name__)


class TickSizes:
    def __init__(self, links: VenueLinks, timeout_s: float) -> None:
        self.links = links
        self.timeout_s = timeout_s
        self._listed: dict[str, dict[str, common.Instrument]] = {}

    async def tick(self, venue: str, symbol: str) -> Decimal | None:
        """The symbol's tick size at the venue; None when the venue does not say."""
        listed = await self.instruments(venue)
        item = None if listed is None else listed.get(symbol)
        return Decimal(item.tick_size) if item is not None and item.tick_size else None

    def forget(self, venue: str) -> None:
        """The venue's list changed (md.{<venue>}.instruments): asked again next time."""
        self._listed.pop(venue, None)

    async def instruments(self, venue: str) -> dict[str, common.Instrument] | None:
        """The venue's instruments by symbol; None when it could not be asked (asked again next
        time)."""
        listed = self._listed.get(venue)
        if listed is None:
            try:
                desk = self.links.desk(venue)
                answer = await desk.marketdata.ListInstruments(
                    md.ListInstrumentsRequest(), timeout=self.timeout_s, metadata=desk.metadata
                )
            except Exception as exc:  # gRPC error, or no such venue: asked again next time
                log.warning("inspector: %s instruments: %s", venue, exc)
                return None
            listed = self._listed[venue] = {i.symbol: i for i in answer.instruments}
        return listed
