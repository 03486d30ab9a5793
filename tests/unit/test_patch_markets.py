"""The markets the detectors' active patches trade (trademesh.core.platform.patch_markets): every named
detector's ListPatches of ACTIVE patches, merged; a detector that fails keeps what it listed
last, one no longer named is dropped; a change is handed on once."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

from trademesh.core.platform.errors import Unavailable
from trademesh.core.platform.patch_markets import ActivePatches, active_markets
from trademesh.core.tools.strategies import PATCH
from trademesh.patch.v1 import patch_pb2 as pb

BTC, ETH, SOL = "BTC/USDT", "ETH/USDT", "SOL/USDT"


def _patch(state: pb.PatchState.ValueType, *markets: tuple[str, str]) -> pb.PatchSummary:
    listed = [pb.Market(venue=venue, symbol=symbol) for venue, symbol in markets]
    return pb.PatchSummary(patch_id=f"p{len(markets)}", state=state, markets=listed)


class Mesh:
    """The detectors the mesh names, each answering ListPatches with its patches (or failing)."""

    def __init__(self) -> None:
        self.patches: dict[str, list[pb.PatchSummary]] = {}
        self.failing: set[str] = set()
        self.asked: list[pb.ListPatchesRequest] = []

    def names(self, service: str) -> list[str]:
        assert service == PATCH
        return sorted(self.patches)

    def unary(
        self, service: str, target: str | None, method: str, request: pb.ListPatchesRequest,
        answer: type[pb.ListPatchesResponse],
    ) -> Awaitable[pb.ListPatchesResponse]:  # fmt: skip
        async def call() -> pb.ListPatchesResponse:
            assert (service, method) == (PATCH, "ListPatches") and target is not None
            self.asked.append(request)
            if target in self.failing:
                raise Unavailable(f"detector {target} is down")
            # The detector filters by the states asked for, as its service does.
            return answer(patches=[p for p in self.patches[target] if p.state in request.states])

        return call()


def test_only_active_patches_markets_count() -> None:
    patches = [
        _patch(pb.PATCH_STATE_ACTIVE, ("sim", BTC), ("sim", ETH)),
        _patch(pb.PATCH_STATE_PAUSED, ("sim", SOL)),
        _patch(pb.PATCH_STATE_ACTIVE, ("", SOL)),
    ]
    assert active_markets(patches) == {("sim", BTC), ("sim", ETH)}


async def test_every_detectors_active_markets_and_a_silent_one_keeps_its_last() -> None:
    mesh = Mesh()
    mesh.patches = {
        "d1": [_patch(pb.PATCH_STATE_ACTIVE, ("sim", BTC)), _patch(pb.PATCH_STATE_DRAFT, ("sim", SOL))],
        "d2": [_patch(pb.PATCH_STATE_ACTIVE, ("okx", ETH))],
    }
    patches = ActivePatches(mesh)
    assert await patches.poll() == {("sim", BTC), ("okx", ETH)}
    assert all(list(r.states) == [pb.PATCH_STATE_ACTIVE] for r in mesh.asked)
    mesh.failing = {"d2"}
    mesh.patches["d1"] = []  # d1's patch paused; d2 does not answer
    assert await patches.poll() == {("okx", ETH)}
    del mesh.patches["d2"]  # no longer named: its markets go
    assert await patches.poll() == frozenset()


async def _polled(mesh: Mesh, times: int) -> None:
    """Until the detectors have been asked `times` more times (or fail after 5 s)."""
    asked = len(mesh.asked)
    async with asyncio.timeout(5):
        while True:
            if len(mesh.asked) >= asked + times:
                return
            await asyncio.sleep(0.005)


async def test_the_markets_are_handed_on_when_they_change() -> None:
    mesh = Mesh()
    mesh.patches = {"d1": [_patch(pb.PATCH_STATE_ACTIVE, ("sim", BTC))]}
    handed: list[frozenset[tuple[str, str]]] = []
    stop = asyncio.Event()
    patches = ActivePatches(mesh, every_s=0.01)
    running = asyncio.create_task(patches.run(stop, handed.append))
    try:
        await _polled(mesh, 5)  # handed once, then polled on with nothing new to hand
        mesh.patches["d1"].append(_patch(pb.PATCH_STATE_ACTIVE, ("sim", ETH)))
        await _polled(mesh, 5)
    finally:
        stop.set()
        await running
    assert handed == [frozenset({("sim", BTC)}), frozenset({("sim", BTC), ("sim", ETH)})]
