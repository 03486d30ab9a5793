"""How many HTTP connections Studio's live data takes, counted in a real browser.

A browser keeps at most 6 HTTP/1.1 connections per origin (per profile: every tab shares them),
and each open server stream holds one; Studio must carry all its live panels on at most two.
The browser's own account is read through the Chrome DevTools Protocol (Network events: every
request with the connection it went on, and whether it finished), and the gateway's through its
/metrics (its open gRPC-web streams, the multiplexer's sessions and subscriptions).
"""

from __future__ import annotations

import asyncio
import re
import time
import urllib.request
from dataclasses import dataclass, field
from typing import Any

import pytest
from playwright.async_api import BrowserContext, CDPSession, Page, expect

from tests.e2e.studio_mesh import StudioMesh, artifact
from tests.e2e.test_studio import WAIT_MS, log_in, open_market, wait_chart
from tests.integration.support import metric_samples, until

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

# The bound of ARCHITECTURE.md: "Studio holds at most two connections for live data however
# many panels are open". With the multiplexer a tab's live data is one stream on one connection.
MAX_LIVE_CONNECTIONS = 2
# A response still open this long after its headers is a stream, not a unary call.
LONG_LIVED_S = 3.0
# How long the gateway may take to learn that a call the browser ended has ended.
SETTLE_S = 15.0


@dataclass
class Request:
    url: str
    sent_at: float
    connection: str | None = None
    received_at: float | None = None
    finished: bool = False


@dataclass
class NetworkLog:
    """Every request of a page as the browser reports it (Chrome DevTools Protocol)."""

    requests: dict[str, Request] = field(default_factory=dict)

    @classmethod
    async def attach(cls, page: Page) -> NetworkLog:
        log = cls()
        session: CDPSession = await page.context.new_cdp_session(page)
        session.on("Network.requestWillBeSent", log._sent)
        session.on("Network.responseReceived", log._received)
        session.on("Network.loadingFinished", log._finished)
        session.on("Network.loadingFailed", log._finished)
        await session.send("Network.enable")
        return log

    def _sent(self, event: dict[str, Any]) -> None:
        self.requests[event["requestId"]] = Request(event["request"]["url"], time.monotonic())

    def _received(self, event: dict[str, Any]) -> None:
        found = self.requests.get(event["requestId"])
        if found is not None:
            found.connection = str(event["response"]["connectionId"])
            found.received_at = time.monotonic()

    def _finished(self, event: dict[str, Any]) -> None:
        found = self.requests.get(event["requestId"])
        if found is not None:
            found.finished = True

    def grpc_web(self) -> list[Request]:
        """The page's gRPC-web calls (POST /<package.Service>/<Method>)."""
        return [r for r in self.requests.values() if "/trademesh." in r.url or "/grpc." in r.url]

    def streams(self) -> list[Request]:
        """Calls still open LONG_LIVED_S after they began: the live streams (a stream may send
        no headers until its first message, so an unanswered call counts too)."""
        now = time.monotonic()
        return [r for r in self.grpc_web() if not r.finished and now - r.sent_at >= LONG_LIVED_S]

    async def judged(self) -> None:
        """Waits until every call still open has been open LONG_LIVED_S, so that each is judged
        a stream or not: one opened by the last thing the test did too."""

        async def all_old() -> bool | None:
            now = time.monotonic()
            young = [r for r in self.grpc_web() if not r.finished and now - r.sent_at < LONG_LIVED_S]
            return None if young else True

        await until(all_old, WAIT_MS / 1000, 0.1, f"every open call {LONG_LIVED_S} s old")


def connections(requests: list[Request]) -> set[str]:
    """The connections the requests hold; one of its own for each not answered yet (over
    HTTP/1.1 a call in flight has its connection to itself)."""
    return {r.connection or f"pending-{index}" for index, r in enumerate(requests)}


def path(request: Request) -> str:
    return "/" + request.url.split("/", 3)[3]


def gateway_metrics(mesh: StudioMesh) -> dict[str, float]:
    return _figures(_metrics_text(mesh))


def _metrics_text(mesh: StudioMesh) -> str:
    with urllib.request.urlopen(f"{mesh.url}/metrics", timeout=10) as reply:
        return str(reply.read().decode())


def _figures(text: str) -> dict[str, float]:
    streams = metric_samples(text, "gateway_grpcweb_open_streams")
    return {
        "open_streams": sum(streams.values()),
        "sessions": sum(metric_samples(text, "gateway_mux_sessions").values()),
        "subscriptions": sum(metric_samples(text, "gateway_mux_subscriptions").values()),
    }


async def gateway_settles_on(mesh: StudioMesh, expected: dict[str, float], summary: str) -> None:
    """Waits until the gateway's figures are `expected`. The gateway learns of a call the browser
    ended (a page of an earlier test closed, a panel's stream aborted) when the connection's close
    reaches it, a moment after the browser's own account: the figures are read until they agree,
    and a stream that never ends fails with its method named."""
    seen: dict[str, Any] = {}

    async def agreed() -> bool | None:
        text = await asyncio.to_thread(_metrics_text, mesh)
        seen["figures"] = _figures(text)
        seen["streams"] = {k: v for k, v in metric_samples(text, "gateway_grpcweb_open_streams").items() if v}
        return True if seen["figures"] == expected else None

    try:
        await until(agreed, SETTLE_S, 0.2, f"the gateway's figures {expected}")
    except pytest.fail.Exception:
        kept = f"{seen['figures']} (open streams {seen['streams']})"
        pytest.fail(f"the gateway kept {kept}, not {expected}; {summary}")


async def open_every_panel(page: Page, mesh: StudioMesh, key: str) -> None:
    """Health board, market chart with book ladder and trades, and the sim's trading desk, all live."""
    await log_in(page, mesh, key)
    await open_market(page, "1s")
    await expect(page.locator('#health article[data-venue="sim"]')).to_have_attribute(
        "data-state", "running", timeout=WAIT_MS
    )
    await expect(page.locator("#trading .status")).to_have_text("live", timeout=WAIT_MS)
    await expect(page.locator("#ladder .level.bid").first).to_be_visible(timeout=WAIT_MS)
    await expect(page.locator("#trades li").first).to_be_visible(timeout=WAIT_MS)
    await wait_chart(page, "Number(e.dataset.candles) >= 2")


async def test_every_panel_open_holds_one_live_stream_on_one_connection(
    page: Page, mesh: StudioMesh, api_key: str
) -> None:
    log = await NetworkLog.attach(page)
    await open_every_panel(page, mesh, api_key)
    # Panels resubscribe as the user moves: each a Remove and an Add, never another stream.
    for timeframe in ("1m", "5m", "1s"):
        await page.click(f'[data-timeframe="{timeframe}"]')
        await expect(page.locator("#market .status")).to_have_text("live", timeout=WAIT_MS)
    await log.judged()

    streams = log.streams()
    live = connections(streams)
    calls = log.grpc_web()
    summary = (
        f"{len(streams)} live streams ({sorted(path(r) for r in streams)}) on {len(live)} "
        f"connections; {len(calls)} gRPC-web calls on {len(connections(calls))} connections"
    )
    print(summary)  # the figure docs/gateway.md quotes
    await page.screenshot(path=artifact("connections-every-panel"))
    assert [path(r) for r in streams] == ["/trademesh.mux.v1.Mux/Open"], summary
    assert len(live) <= MAX_LIVE_CONNECTIONS and len(live) == 1, summary
    # The gateway's side: that one stream carries both live panels' subscriptions (the market's
    # LiveData and the desk's executions), and it is the only stream through the gateway.
    await gateway_settles_on(mesh, {"open_streams": 1.0, "sessions": 1.0, "subscriptions": 2.0}, summary)


async def test_three_tabs_of_one_browser_stay_live_on_a_stream_each(
    page: Page, mesh: StudioMesh, api_key: str
) -> None:
    # Tabs of one browser profile share its 6 connections per origin: with a stream per live
    # panel, three tabs would hold all 6 and the next call of any tab would wait forever.
    context: BrowserContext = page.context
    tabs = [page, await context.new_page(), await context.new_page()]
    logs = [await NetworkLog.attach(tab) for tab in tabs]
    # All at once: the session is per tab (sessionStorage), so each logs in.
    await asyncio.gather(*(open_every_panel(tab, mesh, api_key) for tab in tabs))
    for log in logs:
        await log.judged()

    async def all_live() -> bool | None:
        for tab in tabs:  # every tab still answers: polls and live panels
            for panel in ("#market", "#trading", "#health"):
                if await tab.locator(f"{panel} .status").inner_text() != "live":
                    return None
        return True

    await until(all_live, WAIT_MS / 1000, 0.2, "every panel of every tab live")
    streams = [r for log in logs for r in log.streams()]
    assert sorted(path(r) for r in streams) == ["/trademesh.mux.v1.Mux/Open"] * 3
    assert len(connections(streams)) == 3
    await gateway_settles_on(mesh, {"open_streams": 3.0, "sessions": 3.0, "subscriptions": 6.0}, "three tabs")
    for tab in tabs[1:]:
        await tab.close()


async def test_the_strategies_page_with_a_patch_open_stays_on_the_one_stream(
    page: Page, mesh: StudioMesh, api_key: str
) -> None:
    # The Strategies page adds two live panels (every patch's status, and the open patch's probes)
    # on top of the trading page's two, which keep running: four subscriptions, one stream.
    log = await NetworkLog.attach(page)
    await open_every_panel(page, mesh, api_key)
    await page.click("#nav-strategies")
    await page.locator('#patches tr[data-patch-id="trend/sim/BTC/USDT"] a').click(timeout=WAIT_MS)
    await expect(page.locator("#strategies .status")).to_have_text("live", timeout=WAIT_MS)
    probe = page.locator('#patch-graph text.probe[data-port="ohlcv.close"]').first
    await expect(probe).to_have_attribute("data-value", re.compile(r"\d"), timeout=90_000)
    await expect(page.locator("#patch-view .status")).to_have_text("live", timeout=WAIT_MS)
    await log.judged()

    streams = log.streams()
    summary = f"{sorted(path(r) for r in streams)} on {len(connections(streams))} connections"
    assert [path(r) for r in streams] == ["/trademesh.mux.v1.Mux/Open"], summary
    assert len(connections(streams)) == 1 <= MAX_LIVE_CONNECTIONS, summary
    await gateway_settles_on(mesh, {"open_streams": 1.0, "sessions": 1.0, "subscriptions": 4.0}, summary)
    # Leaving the page lets its two subscriptions go.
    await page.click("#nav-trading")

    async def two_left() -> bool | None:
        now = await asyncio.to_thread(gateway_metrics, mesh)
        return True if now["subscriptions"] == 2.0 else None

    await until(two_left, WAIT_MS / 1000, 0.2, "the strategies page's subscriptions removed")
