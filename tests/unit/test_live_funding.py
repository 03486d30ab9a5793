"""A live venue's funding history through ccxt's fetch_funding_history: one page from `since` on a
venue that pages oldest first (Binance), pages back with the spec's cursor on one that answers
newest first (OKX), spot venues empty, a perpetual ccxt cannot read refused.

The exchange here is a stand-in for ccxt's client (a third-party library), answering as
ccxt's okx and binance do: entries sorted oldest first within the page the venue returned.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from trademesh.core.platform.errors import FailedPrecondition
from trademesh.venues.binance.spec import SPEC as BINANCE_SPOT
from trademesh.venues.binanceusdm.spec import SPEC as BINANCE_USDM
from trademesh.venues.deribit.spec import SPEC as DERIBIT
from trademesh.venues.live.trading import LiveTrading
from trademesh.venues.okx_swap.spec import SPEC as OKX_SWAP

MS = 1_000_000


def entry(index: int) -> dict[str, Any]:
    return {
        "id": str(1000 + index),
        "symbol": "BTC/USDT:USDT",
        "code": "USDT",
        "amount": -0.5,
        "timestamp": index,
    }


class NewestFirst:
    """OKX's bills through ccxt: the newest `limit` older than params["after"], sorted oldest first."""

    has = {"fetchFundingHistory": True}

    def __init__(self, count: int) -> None:
        self.entries = [entry(i) for i in range(1, count + 1)]
        self.calls: list[dict[str, Any]] = []

    async def fetch_funding_history(
        self, symbol: str | None, since: int | None, limit: int, params: dict[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        asked = params or {}
        self.calls.append({"symbol": symbol, "since": since, "limit": limit, **asked})
        older = [e for e in self.entries if "after" not in asked or int(e["id"]) < int(asked["after"])]
        return older[-limit:]


class OldestFirst:
    """Binance's income through ccxt: the oldest `limit` at or after since."""

    has = {"fetchFundingHistory": True}

    def __init__(self, count: int) -> None:
        self.entries = [entry(i) for i in range(1, count + 1)]
        self.calls: list[tuple[str | None, int | None, int]] = []

    async def fetch_funding_history(
        self, symbol: str | None, since: int | None, limit: int
    ) -> list[dict[str, Any]]:
        self.calls.append((symbol, since, limit))
        return [e for e in self.entries if since is None or e["timestamp"] >= since][:limit]


@pytest.fixture(autouse=True)
def credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for venue in ("OKX_SWAP", "BINANCEUSDM", "DERIBIT", "BINANCE"):
        monkeypatch.setenv(f"TRADEMESH_{venue}_API_KEY", "key")


async def test_a_newest_first_venue_is_paged_back_to_since() -> None:
    exchange = NewestFirst(250)
    trading = LiveTrading(OKX_SWAP, exchange, lambda: [])
    found = await trading.funding_payments("BTC/USDT:USDT", 30 * MS, 100)
    ids = [p.funding_id for p in found]
    # Pages of 100 back from the newest: 151-250, 51-150, then 1-50, which reaches since.
    assert [call.get("after") for call in exchange.calls] == [None, "1151", "1051"]
    assert all(call["symbol"] is None and call["limit"] == 100 for call in exchange.calls)
    # What the runtime keeps, cut here already (rates are read for these only): from since,
    # oldest first, at most the limit.
    assert ids == [str(1000 + i) for i in range(30, 130)]
    assert found[0].amount == Decimal("-0.5") and found[0].ts_ns == 30 * MS and found[0].rate is None


async def test_a_newest_first_venue_stops_when_a_page_reaches_since() -> None:
    exchange = NewestFirst(250)
    found = await LiveTrading(OKX_SWAP, exchange, lambda: []).funding_payments(None, 200 * MS, 10)
    assert len(exchange.calls) == 1 and [p.ts_ns for p in found] == [i * MS for i in range(200, 210)]


async def test_too_long_a_history_to_page_back_is_refused_not_cut() -> None:
    exchange = NewestFirst(1200)
    with pytest.raises(FailedPrecondition, match="more than 1000 funding payments"):
        await LiveTrading(OKX_SWAP, exchange, lambda: []).funding_payments(None, 0, 100)


async def test_an_oldest_first_venue_reads_one_page_from_since() -> None:
    exchange = OldestFirst(30)
    found = await LiveTrading(BINANCE_USDM, exchange, lambda: []).funding_payments(
        "BTC/USDT:USDT", 10 * MS, 5
    )
    assert exchange.calls == [("BTC/USDT:USDT", 10, 5)]
    assert [p.ts_ns for p in found] == [i * MS for i in range(10, 15)]
    await LiveTrading(BINANCE_USDM, exchange, lambda: []).funding_payments(None, 0, 5000)
    assert exchange.calls[-1] == (None, None, 1000), "since 0 is no since; the page is the venue's at most"


async def test_spot_is_empty_and_a_perpetual_ccxt_cannot_read_is_refused() -> None:
    assert await LiveTrading(BINANCE_SPOT, OldestFirst(3), lambda: []).funding_payments(None, 0, 10) == []
    deribit = OldestFirst(3)
    deribit.has = {}
    with pytest.raises(FailedPrecondition, match="deribit: ccxt cannot read"):
        await LiveTrading(DERIBIT, deribit, lambda: []).funding_payments(None, 0, 10)
