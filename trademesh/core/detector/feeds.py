"""The detector's venue feeds (trademesh.core.detector.feed.VenueFeed), kept to the symbols its patches trade.

A venue's first feed takes every symbol its patches trade then. A symbol a patch takes later (a
screen-driven strategy's newcomer: trademesh.core.detector.screens) gets a feed of its own, started at
once, so no other symbol's stream is interrupted for it (a resubscription would miss the trades
of its gap, and a second subscription of the same symbol would feed them twice: each symbol is
in exactly one feed). Such a feed stops when no patch trades its symbol any more; the first feed
keeps its symbols for the venue's life (the events of a symbol no patch takes go nowhere). A
venue that leaves the mesh or moves stops all its feeds; the next sync starts its first feed
again, with the symbols of then.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import Any

from trademesh.core.platform.config.mesh import VenueLink

__all__ = ["Follow", "VenueFeeds"]

log = logging.getLogger(__name__)

# A feed of a venue's symbols until stopped: (link, symbols) -> its run.
Follow = Callable[[VenueLink, list[str]], Coroutine[Any, Any, None]]


@dataclass
class _Feed:
    venue: str
    link: VenueLink
    symbols: frozenset[str]
    first: bool
    task: asyncio.Task[None]


class VenueFeeds:
    def __init__(self, follow: Follow) -> None:
        self._follow = follow
        self._feeds: list[_Feed] = []

    @property
    def tasks(self) -> list[asyncio.Task[None]]:
        return [feed.task for feed in self._feeds]

    def symbols(self, venue: str) -> dict[str, bool]:
        """The symbols fed of a venue, each with whether its feed is the venue's first."""
        return {s: feed.first for feed in self._feeds if feed.venue == venue for s in feed.symbols}

    def sync(self, venues: Mapping[str, VenueLink], wanted: Mapping[str, set[str]]) -> None:
        """Feeds for the symbols `wanted` of each venue in `venues` (its link now)."""
        for feed in list(self._feeds):
            gone = feed.venue not in wanted or venues.get(feed.venue) != feed.link
            shown = _shown(feed.symbols)
            if gone:
                moved = "moved" if feed.venue in venues else "left"
                log.info("detector: venue %s %s: its feed of %s stops", feed.venue, moved, shown)
            elif not feed.first and not feed.symbols & wanted[feed.venue]:
                log.info("detector: %s %s: no patch trades it, its feed stops", feed.venue, shown)
                gone = True
            if gone:
                feed.task.cancel()
                self._feeds.remove(feed)
        for venue, symbols in wanted.items():
            link = venues.get(venue)
            if link is None or not symbols:
                continue
            fed = self.symbols(venue)
            if not fed:
                self._start(venue, link, frozenset(symbols), first=True)
                continue
            for symbol in sorted(symbols - set(fed)):
                self._start(venue, link, frozenset({symbol}), first=False)

    def _start(self, venue: str, link: VenueLink, symbols: frozenset[str], *, first: bool) -> None:
        name = f"feed {venue} {_shown(symbols)}"
        task = asyncio.create_task(self._follow(link, sorted(symbols)), name=name)
        self._feeds.append(_Feed(venue, link, symbols, first, task))
        if not first:
            log.info("detector: %s %s: fed from now on", venue, _shown(symbols))


def _shown(symbols: frozenset[str]) -> str:
    return ", ".join(sorted(symbols))
