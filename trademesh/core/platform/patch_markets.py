"""The markets the detectors' active patches trade, so a service follows them from its start:
the advisor (trademesh.core.advisor.gather.keep), so a market's first signal finds its book's
history (trademesh.core.advisor.book_feed) and its venue's fills
(trademesh.core.advisor.fills) there as later ones do; the inspector
(trademesh.core.inspector.market), so a market's first intent finds its quotes' history.

Every detector the mesh names (the Patch service) is asked for its ACTIVE patches (ListPatches)
every `every_s`; the markets are their `markets` (venue, symbol), all detectors' together. No
contract change: ListPatches carries them. A detector that does not answer keeps the markets it
listed last (a restart or a slow answer is no reason to drop a market's history); one the mesh
no longer names is dropped with its markets. The set is handed on when it changes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Protocol

from trademesh.core.platform.aio.retry import sleep_unless
from trademesh.core.platform.errors import TrademeshError
from trademesh.patch.v1 import patch_pb2 as pb

__all__ = ["PATCH", "ActivePatches", "Detectors", "Key", "active_markets"]

PATCH = pb.DESCRIPTOR.services_by_name["Patch"].full_name  # the detectors' service

log = logging.getLogger(__name__)

Key = tuple[str, str]  # venue, symbol
_ACTIVE = pb.ListPatchesRequest(states=[pb.PATCH_STATE_ACTIVE])


class Detectors(Protocol):
    """What the poll needs of the mesh (trademesh.core.tools.upstream.Upstream)."""

    def names(self, service: str) -> list[str]: ...

    def unary(
        self, service: str, target: str | None, method: str, request: pb.ListPatchesRequest,
        answer: type[pb.ListPatchesResponse],
    ) -> Awaitable[pb.ListPatchesResponse]: ...  # fmt: skip


def active_markets(patches: Iterable[pb.PatchSummary]) -> set[Key]:
    """The markets of the active patches listed (a patch in another state trades none)."""
    return {
        (market.venue, market.symbol)
        for patch in patches
        if patch.state == pb.PATCH_STATE_ACTIVE
        for market in patch.markets
        if market.venue and market.symbol
    }


class ActivePatches:
    def __init__(self, mesh: Detectors, every_s: float = 1.0) -> None:
        self._mesh = mesh
        self.every_s = every_s
        self._listed: dict[str, set[Key]] = {}  # detector -> its active patches' markets
        self._failing: set[str] = set()
        self.markets: frozenset[Key] = frozenset()

    async def poll(self) -> frozenset[Key]:
        """Every named detector's active markets now (a silent one's as listed last)."""
        detectors = self._mesh.names(PATCH)
        listed = await asyncio.gather(*(self._list(name) for name in detectors))
        self._listed = {
            name: found if found is not None else self._listed.get(name, set())
            for name, found in zip(detectors, listed, strict=True)
        }
        self.markets = frozenset(key for found in self._listed.values() for key in found)
        return self.markets

    async def run(self, stop: asyncio.Event, on_change: Callable[[frozenset[Key]], None]) -> None:
        """Poll every `every_s` until `stop`, handing on the markets when they change."""
        handed: frozenset[Key] | None = None
        while not stop.is_set():
            found = await self.poll()
            if found != handed:
                handed = found
                shown = ", ".join(f"{venue} {symbol}" for venue, symbol in sorted(found)) or "none"
                log.info("the detectors' active patches trade %s: followed", shown)
                on_change(found)
            await sleep_unless(stop, self.every_s)

    async def _list(self, detector: str) -> set[Key] | None:
        try:
            answer = await self._mesh.unary(PATCH, detector, "ListPatches", _ACTIVE, pb.ListPatchesResponse)
        except TrademeshError as exc:
            if detector not in self._failing:
                self._failing.add(detector)
                log.warning("the patches of detector %s: %s", detector, exc)
            return None
        self._failing.discard(detector)
        return active_markets(answer.patches)
