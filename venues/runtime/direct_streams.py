"""The venue's own streams carried to its bus relays in process (venues.runtime.direct): what ingest's
followers do over gRPC, without the hop.

- LocalMarket: one channel's Subscribe stream, opened on the venue's fan-out with the relay's
  request (venues.runtime.subscribe: the same stream a gRPC subscriber gets), its already-encoded
  batches handed to the relay (core.foundations.bus.relay.MarketRelay) as they are: no parsing,
  no re-encoding. Its queue is the fan-out's per-subscriber bound: while the bus writer is full
  (Redis slow or away) it is not read, and once full the fan-out ends it (DISCONNECT) without
  ever blocking the feed; it is opened again from the last position published, and the venue's
  history gives back what was missed, or, past the history, the relay writes a gap marker since
  the last event published. A lagging subscriber, exactly.
- LocalExecutions: the execution hub's stream from the relay's point, each response to the
  relay (ExecutionRelay: once per venue point).
- LocalFunding: the account's funding payments read from the venue every `every_s`, as ingest
  reads them (core.foundations.bus.funding.FundingRelay).
- LocalInstruments: the venue's instrument list read every `every_s` and diffed, as ingest reads
  ListInstruments (core.foundations.bus.instruments.InstrumentRelay).
- LocalAccount: the account hub's stream (the answers StreamAccount gives), each to the relay
  (core.foundations.bus.account.AccountRelay), opened again after a loss.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Generic, Protocol, TypeVar

from core.foundations.backoff import Backoff
from core.foundations.bus.account import AccountRelay
from core.foundations.bus.funding import FundingRelay
from core.foundations.bus.instruments import InstrumentRelay
from core.foundations.bus.relay import ExecutionRelay, MarketRelay
from core.foundations.convert import funding_payment_to_pb, instrument_to_pb
from core.foundations.errors import FailedPrecondition, InvalidArgument, ResourceExhausted, TrademeshError
from core.foundations.retry import sleep_unless
from trademesh.common.v1 import common_pb2 as common
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf
from venues.runtime.history import ResumePoint
from venues.runtime.runtime import VenueRuntime
from venues.runtime.subscribe import open_market_stream

__all__ = ["LocalAccount", "LocalExecutions", "LocalFunding", "LocalInstruments", "LocalMarket"]

log = logging.getLogger(__name__)


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
        try:
            first = True
            async for raw in subscriber.batches():
                if first:
                    first = False
                    backoff.reset()
                    await self.relay.opened(raw)
                    continue
                await self.relay.take(raw)
        finally:
            self.rt.fanout.unsubscribe(subscriber)
        return "the venue ended the stream"


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
