"""The symbols ingest follows on a venue: those configured, or every instrument it lists; on the
funding channel, the perpetuals among them (only a perpetual has a funding rate); on the mark,
open interest and liquidations channels, the derivatives among them (not spot)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import grpc

from trademesh.common.v1 import common_pb2 as common
from trademesh.core.domain.model import Channel
from trademesh.core.platform.aio.retry import until_reachable
from trademesh.core.platform.config.mesh import VenueLink
from trademesh.core.platform.rpc.client import Metadata
from trademesh.core.platform.rpc.status import calling
from trademesh.marketdata.v1 import marketdata_pb2 as md
from trademesh.marketdata.v1 import marketdata_pb2_grpc as md_grpc

__all__ = ["VenueSymbols", "venue_symbols"]

_CALL_TIMEOUT_S = 10.0
# Errors of a venue that is starting or briefly away: wait for it.
_NOT_YET = dict.fromkeys(
    (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED),
    lambda exc: _NotAnswering(exc.code().name),
)
# Channels only a derivative has; the kinds the venue lists say which symbols are.
_DERIVATIVE_CHANNELS = frozenset({Channel.MARK, Channel.OPEN_INTEREST, Channel.LIQUIDATIONS})
_BY_KIND = _DERIVATIVE_CHANNELS | {Channel.FUNDING}


@dataclass(frozen=True)
class VenueSymbols:
    symbols: list[str]
    perpetuals: list[str]  # of `symbols`, those with a funding rate
    derivatives: list[str] = field(default_factory=list)  # of `symbols`, those not spot

    def of(self, channel: Channel) -> list[str]:
        """The symbols ingest follows on `channel`."""
        if channel is Channel.FUNDING:
            return self.perpetuals
        return self.derivatives if channel in _DERIVATIVE_CHANNELS else self.symbols


class _NotAnswering(Exception):
    """A venue that is not answering yet (UNAVAILABLE, DEADLINE_EXCEEDED): retried."""


async def _list_instruments(link: VenueLink, metadata: Metadata) -> list[tuple[str, int]]:
    async with grpc.aio.insecure_channel(link.address) as channel:
        with calling(f"venue {link.name} at {link.address}", refusals=_NOT_YET):
            reply = await md_grpc.MarketDataStub(channel).ListInstruments(
                md.ListInstrumentsRequest(), metadata=metadata, timeout=_CALL_TIMEOUT_S
            )
    return sorted((i.symbol, i.kind) for i in reply.instruments)


async def venue_symbols(link: VenueLink, metadata: Metadata, stop: asyncio.Event) -> VenueSymbols | None:
    """The configured symbols, or every instrument the venue lists, once it answers (the venue is
    asked only when it must be: no symbols configured, or the funding or a derivatives channel
    followed, which need their kinds); None when stopped first. Unavailable when the venue refuses
    the list (not retried)."""
    if link.symbols and not _BY_KIND.intersection(link.channels):
        return VenueSymbols(list(link.symbols), [])
    listed = await until_reachable(
        lambda: _list_instruments(link, metadata),
        what=f"ingest: venue {link.name} at {link.address}",
        retry_on=(_NotAnswering,),
        stop=stop,
    )
    if listed is None:
        return None
    symbols = list(link.symbols) if link.symbols else [symbol for symbol, _ in listed]
    perpetual = {symbol for symbol, kind in listed if kind == common.INSTRUMENT_KIND_PERPETUAL}
    derivative = {symbol for symbol, kind in listed if kind not in (common.INSTRUMENT_KIND_SPOT, 0)}
    return VenueSymbols(
        symbols,
        [symbol for symbol in symbols if symbol in perpetual],
        [symbol for symbol in symbols if symbol in derivative],
    )
