"""Studio's Backtest page shows what history is held (History/GetCoverage through the gateway),
in a real browser against a real mesh (see studio_mesh): a day of Binance 1m bars imported into
the mesh's database by `trademesh data import`, with a half-hour hole, is a coverage strip with
its range, bar count and the hole marked; "use" picks its venue and range for the run, and its
timeframe as the run's Bars (every trade_bars source of the strategy on 1m bars); a run over a
range with the hole is warned about and not started, and started when Run is clicked again: its
options, at the hub and in the run list, say bars 1m."""

from __future__ import annotations

import asyncio
import hashlib
import os
import zipfile
from pathlib import Path

import pytest
from playwright.async_api import Page, expect

from tests.e2e.studio_mesh import StudioMesh
from tests.e2e.test_studio import WAIT_MS, log_in
from tests.e2e.test_studio_backtest import _hub_call, fill_form, hub, open_backtest, utc_input
from tests.forked_services import run_command
from trademesh.backtest.v1 import backtest_pb2 as bt
from trademesh.core.platform.config.env import DATABASE_URL
from trademesh.core.platform.service.process import ServiceProcess

pytestmark = [pytest.mark.e2e, pytest.mark.integration]
__all__ = ["hub"]  # the fixture, for pytest

MINUTE_S = 60
DAY_S = 1_705_276_800  # 2024-01-15T00:00:00Z
HOLE_S = (DAY_S + 12 * 3600, DAY_S + 12 * 3600 + 30 * MINUTE_S)  # 12:00 .. 12:30
HELD = 1440 - 30
STRIP = '.coverage-strip[data-venue="binance"][data-symbol="BTC/USDT"]'


def day_archive(folder: Path) -> Path:
    lines = [
        f"{s * 1000},42000.1,42010,41990.5,42005.25,1.5,{s * 1000 + 59_999},63007.875,12,0.7,29400.1,0"
        for s in range(DAY_S, DAY_S + 86_400, MINUTE_S)
        if not HOLE_S[0] <= s < HOLE_S[1]
    ]
    path = folder / "BTCUSDT-1m-2024-01-15.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("BTCUSDT-1m-2024-01-15.csv", "\n".join(lines) + "\n")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    path.with_name(path.name + ".CHECKSUM").write_text(f"{digest}  {path.name}\n")
    return path


async def test_the_coverage_strip_picks_a_range_and_a_range_with_holes_warns_before_it_runs(
    page: Page, mesh: StudioMesh, api_key: str, hub: ServiceProcess, tmp_path: Path
) -> None:
    env = {**os.environ, DATABASE_URL: mesh.database_url}
    done = await asyncio.to_thread(run_command, ["data", "import", str(day_archive(tmp_path))], env, 120)
    assert done.returncode == 0, done.stderr
    await log_in(page, mesh, api_key)
    await open_backtest(page)

    strip = page.locator(STRIP)
    await expect(strip).to_be_visible(timeout=WAIT_MS)
    await expect(strip).to_have_attribute("data-timeframe", "1m")
    await expect(strip).to_have_attribute("data-holes", "1")
    await expect(strip.locator(".coverage-range")).to_have_text(
        "2024-01-15 00:00:00 UTC → 2024-01-16 00:00:00 UTC · 1410 bars · 1 hole (30 bars missing)"
    )
    hole = strip.locator(".coverage-hole")
    await expect(hole).to_have_count(1)
    await expect(hole).to_have_attribute("data-start-ns", str(HOLE_S[0] * 10**9))
    drawn = await hole.bounding_box()
    assert drawn is not None and drawn["width"] >= 2, "the hole is not drawn"

    await strip.locator(".coverage-use").click()
    await expect(page.locator("#backtest-venue")).to_have_value("binance")
    await expect(page.locator("#backtest-from")).to_have_value(utc_input(DAY_S))
    await expect(page.locator("#backtest-to")).to_have_value(utc_input(DAY_S + 86_400))
    await expect(page.locator("#backtest-bars")).to_have_value("1m")  # the series' timeframe

    before = await _hub_call(hub, "ListRuns", bt.ListRunsRequest(limit=500))
    window = (HOLE_S[0] - 3600, HOLE_S[1] + 1800)  # 11:00 .. 13:00: the hole inside
    await fill_form(page, *window, "20", symbols="BTC/USDT")
    await page.click("#backtest-run")
    message = page.locator("#backtest-message")
    await expect(message).to_have_attribute("data-tone", "warn")
    await expect(message).to_contain_text(
        "the range has 1 hole (30 bars missing): BTC/USDT 1m 2024-01-15 12:00:00"
    )
    await expect(page.locator("#backtest-run")).to_have_text("Run anyway")
    after = await _hub_call(hub, "ListRuns", bt.ListRunsRequest(limit=500))
    assert [r.run_id for r in after.runs] == [r.run_id for r in before.runs], "a warned run started"

    await page.click("#backtest-run")
    await expect(message).to_have_attribute("data-tone", "ok", timeout=WAIT_MS)
    await expect(page.locator("#backtest-run")).to_have_text("Run")
    run_id = await page.locator("#backtest-progress").get_attribute("data-run-id")
    assert run_id, "the run confirmed is not followed"
    started = await _hub_call(hub, "ListRuns", bt.ListRunsRequest(limit=500))
    assert [r.options.bars for r in started.runs if r.run_id == run_id] == ["1m"]
    strategies = page.locator(f'#backtest-runs tr[data-run-id="{run_id}"] td[data-col="strategies"]')
    await expect(strategies).to_have_attribute("data-bars", "1m", timeout=WAIT_MS)
    await expect(strategies).to_have_text("trend · bars 1m")
