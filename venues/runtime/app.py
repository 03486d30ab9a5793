"""A venue as a service (core.foundations.service): the runtime around its connector, served over gRPC."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from core.foundations.rpc.server import Service
from core.foundations.service import ServiceContext
from venues.runtime.runtime import RuntimeOptions, VenueRuntime
from venues.runtime.services import venue_services
from venues.runtime.venue import Venue

__all__ = ["VenueApp"]

log = logging.getLogger(__name__)


class VenueApp:
    """MarketData, TradeFlow and Admin over one VenueRuntime; serving once the venue started."""

    def __init__(self, venue: Venue, options: RuntimeOptions | None = None) -> None:
        self.runtime = VenueRuntime(venue, options)
        self._services = venue_services(self.runtime)

    @property
    def name(self) -> str:
        return self.runtime.name

    def grpc_services(self) -> Sequence[Service]:
        return self._services

    async def run(self, ctx: ServiceContext) -> None:
        async def not_serving() -> None:  # Admin/Drain: load balancers move away
            await ctx.set_serving(False)

        async def end_streams() -> None:
            log.info("venue %s: %d streams ended", self.name, self.runtime.end_streams())

        self.runtime.on_drain = not_serving
        ctx.on_stopping(end_streams)
        await self.runtime.start()
        try:
            await ctx.ready(paper=self.runtime.venue.paper)
            await ctx.stop.wait()
        finally:
            await self.runtime.stop()
