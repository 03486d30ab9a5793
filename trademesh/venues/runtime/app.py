"""A venue as a service (trademesh.core.platform.service.lifecycle):
the runtime around its connector, served over gRPC."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from trademesh.core.platform.aio.cancellation import cancel_and_wait
from trademesh.core.platform.rpc.server import Service
from trademesh.core.platform.service.lifecycle import ServiceContext
from trademesh.venues.runtime.runtime import RuntimeOptions, VenueRuntime
from trademesh.venues.runtime.services import venue_services
from trademesh.venues.runtime.venue import Venue

if TYPE_CHECKING:  # the direct path's modules (the bus's writers and relays) load only with it
    from trademesh.venues.runtime.direct import DirectBus, DirectOptions

__all__ = ["VenueApp"]

log = logging.getLogger(__name__)


class VenueApp:
    """MarketData, TradeFlow and Admin over one VenueRuntime; serving once the venue started."""

    def __init__(
        self, venue: Venue, options: RuntimeOptions | None = None, direct: DirectOptions | None = None
    ) -> None:
        self.runtime = VenueRuntime(venue, options)
        self._services = venue_services(self.runtime)
        # --bus-direct: the venue writes its own streams to the bus (trademesh.venues.runtime.direct).
        self.direct: DirectBus | None = None
        if direct is not None:
            from trademesh.venues.runtime.direct import DirectBus

            self.direct = DirectBus(self.runtime, direct)

    @property
    def name(self) -> str:
        return self.runtime.name

    def grpc_services(self) -> Sequence[Service]:
        return self._services

    async def run(self, ctx: ServiceContext) -> None:
        async def not_serving() -> None:  # Admin/Drain: load balancers move away
            await ctx.set_serving(False)

        writing: asyncio.Task[None] | None = None
        written = asyncio.Event()  # the direct writer's stop

        async def end_streams() -> None:
            if writing is not None:  # first: what it queued written, its lease released
                written.set()
                await writing
            log.info("venue %s: %d streams ended", self.name, self.runtime.end_streams())

        self.runtime.on_drain = not_serving
        ctx.on_stopping(end_streams)
        await self.runtime.start()
        try:
            if self.direct is not None:
                writing = asyncio.create_task(self.direct.run(written), name=f"{self.name}-direct")
            await ctx.ready(paper=self.runtime.venue.paper)
            await ctx.stop.wait()
        finally:
            if writing is not None and not writing.done():
                await cancel_and_wait(writing)
            await self.runtime.stop()
