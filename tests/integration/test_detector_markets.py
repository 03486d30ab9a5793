"""The detector as a real process on a real sim, with a strategy on a symbol the sim does not
list beside one on BTC/USDT: the BTC/USDT patch is fed (one bad symbol blinds no patch of the
venue), the other is left paused with its reason said once, and activating it, or a patch made
through the API on that symbol, is INVALID_ARGUMENT naming the symbol."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest

from tests.integration.mesh import redis_db
from tests.integration.postgres_server import database_url, new_database
from tests.integration.redis_server import redis_url
from tests.integration.support import TEST_TOKEN, start_venue, stop_venue, until
from trademesh.core.platform.config.env import REDIS_URL, TOKEN
from trademesh.core.platform.rpc.status import bad_request_violations
from trademesh.core.platform.service.process import ServiceProcess, start_service
from trademesh.patch.v1 import patch_pb2 as pb
from trademesh.patch.v1 import patch_pb2_grpc as pb_grpc

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # a sim and a detector: not the fast tier
__all__ = ["database_url", "redis_url"]  # fixtures

AUTH = (("authorization", f"Bearer {TEST_TOKEN}"),)
FLOW = (Path(__file__).parents[2] / "trademesh/core/detector/strategies/order_flow.toml").read_text()
GOOD, BAD = "flow_btc/sim/BTC/USDT", "flow_doge/sim/DOGE/USDT"
T = 10.0  # call timeout


def _strategy(strategy_id: str, symbol: str) -> str:
    text = FLOW.replace('id = "order_flow"', f'id = "{strategy_id}"')
    return text.replace('symbols = ["BTC/USDT"]', f'symbols = ["{symbol}"]')


@dataclass
class Detector:
    process: ServiceProcess
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@pytest.fixture
async def detector(tmp_path: Path, database_url: str, redis_url: str) -> AsyncIterator[Detector]:
    good, bad = tmp_path / "good.toml", tmp_path / "bad.toml"
    good.write_text(_strategy("flow_btc", "BTC/USDT"))
    bad.write_text(_strategy("flow_doge", "DOGE/USDT"))
    async with new_database(database_url, "detmarkets") as database, redis_db(redis_url) as bus:
        venue, venue_log = start_venue(tmp_path, None, "sim")
        log_path = tmp_path / "detector.log"
        try:
            with log_path.open("w") as log_file:
                args = ["detector", "--port", "0", "--metrics-port", "-1", "--venue", f"sim={venue.address}"]
                args += ["--database-url", database, "--strategy", str(good), "--strategy", str(bad)]
                process = start_service(args, env={TOKEN: TEST_TOKEN, REDIS_URL: bus}, stderr=log_file)
            try:
                yield Detector(process, log_path)
            finally:
                await asyncio.to_thread(process.terminate)
        finally:
            await stop_venue(venue, venue_log)


async def _fed(stub: pb_grpc.PatchAsyncStub) -> None:
    """The BTC/USDT patch sees the venue's trades (a probe of its trades source)."""
    request = pb.StreamProbesRequest(patch_id=GOOD, ports=["trades.trade"])
    probes = stub.StreamProbes(request, metadata=AUTH)

    async def trades() -> None:
        """Trades of three evaluations (the first update may be the value held: not a new trade)."""
        seen: set[int] = set()
        while len(seen) < 3:
            answer = await probes.read()
            assert isinstance(answer, pb.StreamProbesResponse), "the probe stream ended"
            seen |= {u.ts_ns for u in answer.updates if (u.module_id, u.port) == ("trades", "trade")}

    try:
        await asyncio.wait_for(trades(), 30)
    finally:
        probes.cancel()


async def _refused(call: object) -> str:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call  # type: ignore[misc]
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, caught.value
    ((field, why),) = bad_request_violations(caught.value)
    assert field == "patch_id" and why.startswith("unknown symbol 'DOGE/USDT'"), why
    return why


async def test_a_patch_on_an_unlisted_symbol_blinds_no_other_patch_and_cannot_be_activated(
    detector: Detector,
) -> None:
    async with grpc.aio.insecure_channel(detector.process.address) as channel:
        stub = pb_grpc.PatchStub(channel)
        await _fed(stub)
        bad = (await stub.GetPatch(pb.GetPatchRequest(patch_id=BAD), metadata=AUTH, timeout=T)).patch
        assert bad.state != pb.PATCH_STATE_ACTIVE
        await _refused(stub.ActivatePatch(pb.ActivatePatchRequest(patch_id=BAD), metadata=AUTH, timeout=T))
        made = await stub.CreatePatch(
            pb.CreatePatchRequest(strategy_toml=_strategy("api_doge", "DOGE/USDT")), metadata=AUTH, timeout=T
        )
        api_doge = made.patch.patch_id
        await _refused(
            stub.ActivatePatch(pb.ActivatePatchRequest(patch_id=api_doge), metadata=AUTH, timeout=T)
        )
        await _fed(stub)  # still
    said = [line for line in detector.log().splitlines() if "DOGE/USDT" in line]
    assert 1 <= len(said) <= 2, said  # left paused, and not fed: once each, no retry loop

    async def paused_said() -> bool | None:
        return True if "left paused" in detector.log() else None

    await until(paused_said, T, 0.1, "the patch left paused said")


async def test_a_patch_moved_to_a_venue_the_detector_does_not_follow_cannot_be_activated(
    detector: Detector,
) -> None:
    """Issue 37, items 16-17: the advisor and the inspector follow every active patch's market, so
    a patch active on a venue nobody serves had them retry it for ever; ActivatePatch refuses it."""
    async with grpc.aio.insecure_channel(detector.process.address) as channel:
        stub = pb_grpc.PatchStub(channel)
        made = await stub.CreatePatch(
            pb.CreatePatchRequest(strategy_toml=_strategy("api_nope", "BTC/USDT")), metadata=AUTH, timeout=T
        )
        patch_id = made.patch.patch_id
        moved = pb.UpdatePatchRequest(patch_id=patch_id, markets=[pb.Market(venue="nope", symbol="BTC/USDT")])
        await stub.UpdatePatch(moved, metadata=AUTH, timeout=T)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.ActivatePatch(pb.ActivatePatchRequest(patch_id=patch_id), metadata=AUTH, timeout=T)
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND, caught.value
        assert "no venue 'nope'" in (caught.value.details() or "")
        got = await stub.GetPatch(pb.GetPatchRequest(patch_id=patch_id), metadata=AUTH, timeout=T)
        assert got.patch.state != pb.PATCH_STATE_ACTIVE
