"""The symbols ingest follows on a venue: those configured, or every instrument it lists."""

from __future__ import annotations

import asyncio

import grpc

from core.foundations.mesh_config import VenueLink
from core.foundations.retry import until_reachable
from core.foundations.rpc.client import Metadata
from core.foundations.rpc.status import unavailable
from trademesh.marketdata.v1 import marketdata_pb2 as md
from trademesh.marketdata.v1 import marketdata_pb2_grpc as md_grpc

__all__ = ["venue_symbols"]

_CALL_TIMEOUT_S = 10.0
# Errors of a venue that is starting or briefly away: wait for it.
_NOT_YET = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)


class _NotAnswering(Exception):
    """A venue that is not answering yet (UNAVAILABLE, DEADLINE_EXCEEDED): retried."""


async def _list_symbols(link: VenueLink, metadata: Metadata) -> list[str]:
    async with grpc.aio.insecure_channel(link.address) as channel:
        try:
            reply = await md_grpc.MarketDataStub(channel).ListInstruments(
                md.ListInstrumentsRequest(), metadata=metadata, timeout=_CALL_TIMEOUT_S
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() in _NOT_YET:
                raise _NotAnswering(exc.code().name) from None
            raise unavailable(exc, f"venue {link.name} at {link.address}") from None
    return sorted(i.symbol for i in reply.instruments)


async def venue_symbols(link: VenueLink, metadata: Metadata, stop: asyncio.Event) -> list[str] | None:
    """The configured symbols, or every instrument the venue lists, once it answers; None when
    stopped first. Unavailable when the venue refuses the list (not retried)."""
    if link.symbols:
        return list(link.symbols)
    return await until_reachable(
        lambda: _list_symbols(link, metadata),
        what=f"ingest: venue {link.name} at {link.address}",
        retry_on=(_NotAnswering,),
        stop=stop,
    )
