"""One venue's instrument list followed onto the bus: MarketData.ListInstruments, read at the start
and every `every_s`, diffed against what was last published (trademesh.core.platform.bus.instruments),
each change an event on md.{<venue>}.instruments (bus.v1.InstrumentChanges), under the venue's
lease like its other streams. Resumed from the stream's last entry, so a restart announces
nothing again. A venue that is not answering is asked again at the next read (said once)."""

from __future__ import annotations

import asyncio
import logging

import grpc

from trademesh.common.v1 import common_pb2 as common
from trademesh.core.ingest import metrics
from trademesh.core.ingest.dial import VenueDial
from trademesh.core.platform.aio.retry import sleep_unless
from trademesh.core.platform.bus.instruments import KIND_WORDS, InstrumentRelay, Publish
from trademesh.core.platform.logs.setup import bind_log_fields
from trademesh.core.platform.rpc.status import call_failure
from trademesh.marketdata.v1 import marketdata_pb2 as md
from trademesh.marketdata.v1 import marketdata_pb2_grpc as md_grpc

__all__ = ["InstrumentFollower"]

log = logging.getLogger(__name__)

_TIMEOUT_S = 10.0


class InstrumentFollower(InstrumentRelay):
    """The gRPC side of the relay: ListInstruments every `every_s`."""

    def __init__(self, dial: VenueDial, publish: Publish, source: str, every_s: float) -> None:
        super().__init__(dial.venue, publish, source, every_s)
        self.dial = dial

    async def run(self, stop: asyncio.Event) -> None:
        bind_log_fields(venue=self.dial.venue, stream=self.stream)
        failing = False
        while not stop.is_set():
            try:
                changes = await self.poll_with(self._list_all)
            except grpc.aio.AioRpcError as exc:
                metrics.INSTRUMENT_READS.labels(self.dial.venue, "failed").inc()
                if not failing:
                    log.warning(
                        "ingest %s: instruments not read (%s); again every %.0f s",
                        self.stream,
                        call_failure(exc),
                        self.every_s,
                    )
                failing = True
            else:
                metrics.INSTRUMENT_READS.labels(self.dial.venue, "read").inc()
                failing = False
                for change in changes:
                    metrics.INSTRUMENT_CHANGES.labels(self.dial.venue, KIND_WORDS[change.kind]).inc()
                if changes and len(changes) <= 20:
                    said = ", ".join(f"{c.symbol} {KIND_WORDS[c.kind]}" for c in changes)
                    log.info("ingest %s: %s", self.stream, said)
                elif changes:
                    log.info("ingest %s: %d instrument changes", self.stream, len(changes))
            if await sleep_unless(stop, self.every_s):
                return

    async def _list_all(self) -> list[common.Instrument]:
        async with self.dial.channel() as channel:
            answer = await md_grpc.MarketDataStub(channel).ListInstruments(
                md.ListInstrumentsRequest(), metadata=self.dial.metadata, timeout=_TIMEOUT_S
            )
        return list(answer.instruments)
