"""The venue's own streams carried to its bus relays in process (trademesh.venues.runtime.direct): what
ingest's followers do over gRPC, without the hop.

- LocalMarket: one channel's Subscribe stream, opened on the venue's fan-out with the relay's
  request (trademesh.venues.runtime.subscribe: the same stream a gRPC subscriber gets), its already-encoded
  batches handed to the relay (trademesh.core.platform.bus.relay.MarketRelay) as they are: no parsing,
  no re-encoding. Its queue is the fan-out's per-subscriber bound: while the bus writer is full
  (Redis slow or away) it is not read, and once full the fan-out ends it (DISCONNECT) without
  ever blocking the feed; it is opened again from the last position published, and the venue's
  history gives back what was missed, or, past the history, the relay writes a gap marker since
  the last event published. A lagging subscriber, exactly. The fan-out's bound counts the venue's
  batches, and a venue starved of CPU makes fewer of them (the sim at load 12-20 filled its 256 in
  48-65 s, not 13 s): so a batch the writer has had no room for during `stall_s` (STALL_S) also
  ends the stream, whatever the venue's pace.
- LocalExecutions: the execution hub's stream from the relay's point, each response to the
  relay (ExecutionRelay: once per venue point).
- LocalFunding: the account's funding payments read from the venue every `every_s`, as ingest
  reads them (trademesh.core.platform.bus.funding.FundingRelay).
- LocalInstruments: the venue's instrument list read every `every_s` and diffed, as ingest reads
  ListInstruments (trademesh.core.platform.bus.instruments.InstrumentRelay).
- LocalAccount: the account hub's stream (the answers StreamAccount gives), each to the relay
  (trademesh.core.platform.bus.account.AccountRelay), opened again after a loss.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Generic, Protocol, TypeVar

from trademesh.common.v1 import common_pb2 as common
from trademesh.core.domain.convert import funding_payment_to_pb, instrument_to_pb
from trademesh.core.platform.aio.backoff import Backoff
from trademesh.core.platform.aio.retry import sleep_unless
from trademesh.core.platform.bus.account import AccountRelay
from trademesh.core.platform.bus.funding import FundingRelay
from trademesh.core.platform.bus.instruments import InstrumentRelay
from trademesh.core.platform.bus.relay import ExecutionRelay, MarketRelay
from trademesh.core.platform.errors import (
    FailedPrecondition,
    InvalidArgument,
    ResourceExhausted,
    TrademeshError,
)
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf
from trademesh.venues.runtime.fanout import MarketSubscriber
from trademesh.venues.runtime.history import ResumePoint
from trademesh.venues.runtime.runtime import VenueRuntime
from trademesh.venues.runtime.subscribe import open_market_stream

__all__ = ["STALL_S", "LocalAccount", "LocalExecutions", "LocalFunding", "LocalInstruments", "LocalMarket"]

log = logging.getLogger(__name__)

# A market batch waiting this long for room in the bus writer ends its stream (Redis slow or away).
STALL_S = 10.0


class _Relay(Protocol):
    stream: str


R = TypeVar("R", bound=_Relay)


class _Carrier(Generic[R]):
    """One of the venue's streams and the relay it is carried to."""

    def __init__(self, runtime: VenueRuntime, relay: R) -> None:
        self.rt = runtime
        self.relay: R = relay

    @property
    def stream(self) -> str:
        return self.relay.stream


class LocalMarket(_Carrier[MarketRelay]):
    def __init__(self, runtime: VenueRuntime, relay: MarketRelay, stall_s: float = STALL_S) -> None:
        super().__init__(runtime, relay)
        self.stall_s = stall_s

    async def run(self, stop: asyncio.Event) -> None:
        backoff = Backoff(0.05, 2.0)
        while not stop.is_set() and self.relay.symbols:
            try:
                reason = await self._carry_once(backoff)
            except ResourceExhausted:
                reason = "the bus writer fell a whole queue behind (Redis slow or away)"
            except (FailedPrecondition, InvalidArgument) as exc:  # asked again, refused again
                log.warning("venue %s: refused (%s): not asked again", self.stream, exc)
                await stop.wait()
                return
            except TrademeshError as exc:  # not served now (draining): asked again later
                reason = f"not served: {exc}"
            self.relay.lost()
            self.relay.reconnects += 1
            delay = backoff.next()
            log.warning("venue %s: %s; opened again in %.2f s", self.stream, reason, delay)
            if await sleep_unless(stop, delay):
                return

    async def _carry_once(self, backoff: Backoff) -> str:
        subscriber = open_market_stream(self.rt, self.relay.request())
        loop = asyncio.get_running_loop()
        try:
            first = True
            async for raw in subscriber.batches():
                # The batch is published whatever comes (its trades are noted as published): past
                # stall_s the stream is ended under it, and read again once the writer took it.
                stalled = loop.call_later(self.stall_s, self._let_go, subscriber)
                try:
                    if first:
                        first = False
                        backoff.reset()
                        await self.relay.opened(raw)
                    else:
                        await self.relay.take(raw)
                finally:
                    stalled.cancel()
        finally:
            self.rt.fanout.unsubscribe(subscriber)
        return "the venue ended the stream"

    def _let_go(self, subscriber: MarketSubscriber) -> None:
        """The stream ended as the fan-out ends a subscriber a whole queue behind: nothing more is
        queued for it, and it resumes from the last batch published."""
        reason = f"the bus writer has taken no batch for {self.stall_s:g} s (Redis slow or away)"
        if self.rt.fanout.drop(subscriber, reason):
            log.warning(
                "venue %s: %s: its stream ended, resumed once the writer has room", self.stream, reason
            )


class LocalExecutions(_Carrier[ExecutionRelay]):
    async def run(self, stop: asyncio.Event) -> None:
        backoff = Backoff(0.05, 2.0)
        while not stop.is_set():
            try:
                await self._carry_once()
                reason = "the venue ended the stream"
            except ResourceExhausted:
                reason = "the bus writer fell a whole queue behind (Redis slow or away)"
            self.relay.reconnects += 1
            delay = backoff.next()
            log.warning(
                "venue %s: %s; resuming after execution %d in %.2f s",
                self.stream,
                reason,
                self.relay.position,
                delay,
            )
            if await sleep_unless(stop, delay):
                return

    async def _carry_once(self) -> None:
        hub = self.rt.executions
        subscriber = hub.subscribe(frozenset(), ResumePoint(self.relay.epoch, self.relay.position))
        try:
            if subscriber.header is not None:
                await self.relay.take(subscriber.header.SerializeToString())
            async for batch in subscriber.batches():
                await self.relay.take(hub.response(batch).SerializeToString())
        finally:
            hub.unsubscribe(subscriber)


class LocalFunding(_Carrier[FundingRelay]):
    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.relay.poll_with(self._page)
            except FailedPrecondition as exc:
                log.info("venue %s: keeps no funding history (%s)", self.stream, exc)
                return
            except TrademeshError as exc:  # the exchange away: next time
                log.warning(
                    "venue %s: funding not read (%s); again in %.0f s", self.stream, exc, self.relay.every_s
                )
            if await sleep_unless(stop, self.relay.every_s):
                return

    async def _page(self, since_ns: int, limit: int) -> list[tf.FundingPayment]:
        payments = await self.rt.funding_page(None, since_ns, limit)
        return [funding_payment_to_pb(p) for p in payments]


class LocalInstruments(_Carrier[InstrumentRelay]):
    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.relay.poll_with(self._list)
            except TrademeshError as exc:  # the exchange away: next time
                log.warning(
                    "venue %s: instruments not read (%s); again in %.0f s",
                    self.stream,
                    exc,
                    self.relay.every_s,
                )
            if await sleep_unless(stop, self.relay.every_s):
                return

    async def _list(self) -> list[common.Instrument]:
        self.rt.instruments = {
            item.symbol: item for item in self.rt.venue.instruments()
        }  # as ListInstruments
        return [instrument_to_pb(item) for _, item in sorted(self.rt.instruments.items())]


class LocalAccount(_Carrier[AccountRelay]):
    async def run(self, stop: asyncio.Event) -> None:
        backoff, told = Backoff(0.5, 30.0), False
        while not stop.is_set():
            before = self.relay.published
            try:
                await self._carry_once(backoff)
                reason = "the venue ended the stream"
            except TrademeshError as exc:  # an account the venue cannot read (no credentials)
                reason = str(exc)
            if self.relay.published > before:
                told = False
            delay = backoff.next()
            if not told:
                log.warning(
                    "venue %s: account not followed (%s); again in %.1f s", self.stream, reason, delay
                )
                told = True
            if await sleep_unless(stop, delay):
                return

    async def _carry_once(self, backoff: Backoff) -> None:
        hub = self.rt.account
        subscriber, snapshot = await hub.subscribe()
        try:
            await self.relay.take(snapshot)
            backoff.reset()
            async for response in subscriber.responses():
                await self.relay.take(response)
        finally:
            hub.unsubscribe(subscriber)
