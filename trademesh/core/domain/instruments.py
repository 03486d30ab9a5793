"""The instruments each venue lists (its MarketData.ListInstruments answer), kept per venue for
the services that follow markets on request (the inspector, the detector, the advisor): a
market is checked against them before anything follows it, so a symbol the venue does not list
is refused at once with its name, never subscribed to and refused by the venue again and again.

A venue's list is asked for once, and again when it is older than `max_age_s` or when a symbol
is not in it and the list is older than `recheck_s` (a symbol listed since is found within
that; a stream of requests for a bad symbol costs one call per venue per `recheck_s`). Callers
asking at once share one call. A venue that does not answer: its last list while it has one,
else the error (remembered for `retry_s`: a flood of requests is not a flood of calls).
Callers check the venue is known first (one entry is kept per venue asked about).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field

from trademesh.common.v1 import common_pb2 as common
from trademesh.core.platform.errors import InvalidArgument, TrademeshError, shown

__all__ = ["Listing", "VenueInstruments", "unknown_symbol"]

log = logging.getLogger(__name__)

# A venue's instruments as it lists them now; raises a TrademeshError (Unavailable, NotFound).
Listing = Callable[[str], Awaitable[Sequence[common.Instrument]]]


def unknown_symbol(venue: str, symbol: str) -> str:
    """Why a symbol is refused, as every service says it."""
    listed = "ListInstruments names its symbols"
    return f"unknown symbol {shown(symbol)}: venue {shown(venue)} does not list it ({listed})"


@dataclass
class _Known:
    by_symbol: dict[str, common.Instrument] = field(default_factory=dict)
    at: float = float("-inf")  # when the list was read (the clock's seconds)
    failed: TrademeshError | None = None
    failed_at: float = float("-inf")
    asking: asyncio.Future[None] | None = None


@dataclass(eq=False)
class VenueInstruments:
    """The venues' lists read through `listing`, kept by the rules of the module docstring."""

    listing: Listing
    max_age_s: float = 300.0
    recheck_s: float = 30.0
    retry_s: float = 1.0
    clock: Callable[[], float] = time.monotonic
    _venues: dict[str, _Known] = field(default_factory=dict, init=False, repr=False)

    async def instruments(self, venue: str) -> Mapping[str, common.Instrument]:
        """The venue's instruments by symbol (asked for when not held or too old)."""
        known = self._venues.setdefault(venue, _Known())
        if self.clock() - known.at > self.max_age_s:
            await self._read(venue, known)
        return known.by_symbol

    async def instrument(self, venue: str, symbol: str) -> common.Instrument | None:
        """The symbol's instrument at the venue; None when the venue does not list it (asked
        again first when the list is older than `recheck_s`)."""
        found = (await self.instruments(venue)).get(symbol)
        known = self._venues[venue]
        if found is None and self.clock() - known.at > self.recheck_s:
            await self._read(venue, known)
            found = known.by_symbol.get(symbol)
        return found

    async def check(self, venue: str, symbol: str, field: str = "symbol") -> common.Instrument:
        """The symbol's instrument; InvalidArgument naming `field` when the venue does not list it."""
        found = await self.instrument(venue, symbol)
        if found is None:
            raise InvalidArgument.field(field, unknown_symbol(venue, symbol))
        return found

    async def split(self, venue: str, symbols: Sequence[str]) -> tuple[list[str], list[str]]:
        """(listed, not listed) of `symbols`, each in the given order."""
        listed: list[str] = []
        unknown: list[str] = []
        for symbol in symbols:
            (listed if await self.instrument(venue, symbol) is not None else unknown).append(symbol)
        return listed, unknown

    def forget(self, venue: str) -> None:
        """No longer kept (the venue is gone): asked for again if it comes back."""
        self._venues.pop(venue, None)

    async def _read(self, venue: str, known: _Known) -> None:
        """One call for every asker at once; the last list kept when it fails."""
        if known.asking is not None:
            await asyncio.shield(known.asking)
        elif known.failed is not None and self.clock() - known.failed_at < self.retry_s:
            pass  # failed a moment ago: not asked again yet
        else:
            known.asking = asyncio.get_running_loop().create_future()
            try:
                answer = await self.listing(venue)
                known.by_symbol = {i.symbol: i for i in answer}
                known.at, known.failed = self.clock(), None
            except TrademeshError as exc:
                if known.failed is None:  # once per failing spell
                    log.warning("instruments of %s: %s", venue, exc, extra={"venue": venue})
                known.failed, known.failed_at = exc, self.clock()
            finally:
                known.asking.set_result(None)
                known.asking = None
        if known.failed is not None and known.at == float("-inf"):
            raise known.failed
