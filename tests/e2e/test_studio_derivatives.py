"""A perpetual's live derivatives figures in Studio (issue 60), in a real browser against the real
mesh (studio_mesh): a sim account of its own (`trademesh venue sim --account derivs`, a linear
perpetual BTC/USDT:USDT beside spot BTC/USDT) registers with the gateway; the mesh's ingest follows
it (found in the registry, the default channels: its funding among them), the bridge passes its
funding events on as LiveData's KIND_FUNDING, and the trading page's derivatives strip shows the
perpetual's funding rate, its next funding time and its mark price (the funding events' mark, and
the mark events' where ingest follows the mark channel too) as the bus holds them, live. The sim
states no index price and no open interest: the strip leaves them out. Spot BTC/USDT has no strip.

The sim publishes no public liquidations: to see the tape mark one, the test publishes a
liquidation of the perpetual on md.{sim.derivs}.liquidations as ingest would from a venue that
does (the bridge tests' way: tests/integration/bridge_support.py)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
import redis.asyncio as aioredis
from playwright.async_api import Page, expect

from tests.e2e.studio_mesh import StudioMesh, artifact
from tests.e2e.test_studio import WAIT_MS, log_in
from tests.integration.support import until
from trademesh.common.v1 import common_pb2 as common
from trademesh.core.domain.model import Channel
from trademesh.core.platform.bus.codec import FIELD, decode, encode_market
from trademesh.core.platform.bus.names import market_stream
from trademesh.core.platform.service.process import ServiceProcess
from trademesh.marketdata.v1 import marketdata_pb2 as md

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

ACCOUNT = "derivs"
VENUE = f"sim.{ACCOUNT}"
PERP = "BTC/USDT:USDT"
SPOT = "BTC/USDT"
FUNDING_RATE = "0.000125"  # shown as 0.0125 %
FUNDING_SHOWN = "0.0125%"
FUNDING_INTERVAL_S = 3600
# Funding events the mark shown is looked for among (the sim states one a second).
RECENT = 30
CONFIG = f"""
tick_interval_ms = 50
[balances]
USDT = "100000"
[[symbols]]
symbol = "{PERP}"
start_price = "65000"
tick_size = "0.1"
lot_size = "0.001"
funding_rate = "{FUNDING_RATE}"
funding_interval_s = {FUNDING_INTERVAL_S}
trades_per_s = 5
book_updates_per_s = 10
level_spacing_ticks = 20
maker_size_lots = 3000
taker_size_lots = 1000
[[symbols]]
symbol = "{SPOT}"
start_price = "65000"
tick_size = "0.01"
lot_size = "0.00001"
trades_per_s = 5
book_updates_per_s = 10
"""
STRIP = "#derivatives"
MARK = f'{STRIP} [data-figure="mark"] [data-exact]'
RATE = f'{STRIP} [data-figure="funding-rate"] [data-exact]'
NEXT = f'{STRIP} [data-figure="next-funding"]'


@dataclass(frozen=True)
class Derivs:
    venue: ServiceProcess
    bus: aioredis.Redis


@pytest.fixture(scope="module")
async def derivs(mesh: StudioMesh) -> AsyncIterator[Derivs]:
    """The derivs account's venue, stopped when the module ends; a client of the mesh's bus."""
    path = mesh.directory / f"sim-{ACCOUNT}.toml"
    path.write_text(CONFIG)
    venue = await asyncio.to_thread(
        mesh.processes.start, "venue", "sim", "--account", ACCOUNT, "--config", str(path)
    )
    bus = aioredis.Redis.from_url(mesh.redis_url)
    try:
        yield Derivs(venue, bus)
    finally:
        await bus.aclose()
        await asyncio.to_thread(venue.terminate)


async def recent(bus: aioredis.Redis, channel: Channel) -> list[md.MarketEvent]:
    """The perpetual's latest events of `channel` on the bus (what ingest put there), newest first."""
    stream = market_stream(VENUE, channel)
    entries: list[tuple[bytes, dict[bytes, bytes]]] = await bus.xrevrange(stream, count=RECENT)  # type: ignore[assignment]
    return [e for _, fields in entries for e in decode(fields).market.events if e.symbol == PERP]


async def recent_funding(bus: aioredis.Redis) -> list[md.FundingRate]:
    return [e.funding_rate for e in await recent(bus, Channel.FUNDING) if e.HasField("funding_rate")]


async def recent_marks(bus: aioredis.Redis) -> set[str]:
    """The marks the bus held lately: the funding events' and, where ingest follows the mark
    channel too, the mark events'."""
    marks = {f.mark_price for f in await recent_funding(bus)}
    return marks | {
        e.mark_price.mark_price for e in await recent(bus, Channel.MARK) if e.HasField("mark_price")
    }


async def select_perpetual(page: Page, mesh: StudioMesh, api_key: str) -> None:
    await log_in(page, mesh, api_key)
    await expect(page.locator(f'#venue-select option[value="{VENUE}"]')).to_have_count(1, timeout=WAIT_MS)
    await page.select_option("#venue-select", VENUE)
    await expect(page.locator(f'#symbol-select option[value="{PERP}"]')).to_have_count(1, timeout=WAIT_MS)
    await page.select_option("#symbol-select", PERP)
    await expect(page.locator(STRIP)).to_be_visible(timeout=WAIT_MS)


async def test_a_perpetuals_mark_and_funding_rate_show_live_as_the_bus_holds_them(
    page: Page, mesh: StudioMesh, api_key: str, derivs: Derivs
) -> None:
    await select_perpetual(page, mesh, api_key)
    rate = page.locator(RATE)
    await expect(rate).to_have_attribute("data-exact", FUNDING_RATE, timeout=WAIT_MS)
    await expect(rate).to_have_text(FUNDING_SHOWN)
    mark = page.locator(MARK)
    await expect(mark).to_have_count(1, timeout=WAIT_MS)
    first = await mark.get_attribute("data-exact")
    # What the strip shows is what the venue stated, as the bus holds it: the rate, its next
    # funding time (the next multiple of the interval) and a mark among the latest ones.
    on_bus = await recent_funding(derivs.bus)
    assert on_bus and all(f.rate == FUNDING_RATE for f in on_bus), on_bus
    marks = await recent_marks(derivs.bus)
    assert first in marks, (first, marks)
    next_ns = await page.locator(NEXT).get_attribute("data-next-funding-ns")
    assert next_ns is not None and int(next_ns) in {f.next_funding_ns for f in on_bus}, next_ns
    assert int(next_ns) % (FUNDING_INTERVAL_S * 10**9) == 0 and int(next_ns) > time.time_ns() - 10**9
    await expect(page.locator(NEXT)).to_contain_text("(in ")
    # The sim states neither an index nor open interest: left out, not shown empty.
    for absent in ("index", "open-interest"):
        await expect(page.locator(f'{STRIP} [data-figure="{absent}"]')).to_have_count(0)
    assert "NaN" not in await page.locator(STRIP).inner_text()

    # Live: the mark moves with the sim's market, and each one shown is one the bus held.
    async def moved() -> str | None:
        shown = await mark.get_attribute("data-exact")
        return shown if shown not in (None, first) else None

    later = await until(moved, WAIT_MS / 1000, 0.2, "the strip's mark to move with the market")
    assert later in await recent_marks(derivs.bus), later
    await page.screenshot(path=artifact("derivatives-strip"))

    # Spot has no derivatives streams: no strip.
    await page.select_option("#symbol-select", SPOT)
    await expect(page.locator(STRIP)).to_be_hidden(timeout=WAIT_MS)


async def test_a_liquidation_in_the_perpetuals_market_shows_on_the_tape_marked(
    page: Page, mesh: StudioMesh, api_key: str, derivs: Derivs
) -> None:
    await select_perpetual(page, mesh, api_key)
    await expect(page.locator("#market .status")).to_have_text("live", timeout=WAIT_MS)
    await expect(page.locator(RATE)).to_have_attribute("data-exact", FUNDING_RATE, timeout=WAIT_MS)
    now = time.time_ns()
    liquidation = md.MarketEvent(
        venue=VENUE, symbol=PERP, ts_event_ns=now, ts_recv_ns=now,
        liquidation=md.Liquidation(side=common.SIDE_SELL, price="61234.5", size="0.75"),
    )  # fmt: skip
    entry = {FIELD: encode_market("e2e", [liquidation])}
    await derivs.bus.xadd(market_stream(VENUE, Channel.LIQUIDATIONS), entry, maxlen=1000)  # type: ignore[arg-type]
    row = page.locator('#trades li[data-liquidation="true"]')
    await expect(row).to_have_count(1, timeout=WAIT_MS)
    await expect(row.locator(".badge.liquidation")).to_have_text("liq")
    await expect(row.locator(".price")).to_have_text("61234.5")
    await expect(row.locator(".size")).to_have_text("0.75")
    await expect(row).to_have_class("sell liquidation")
    await page.screenshot(path=artifact("derivatives-tape-liquidation"))
