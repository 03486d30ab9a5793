"""The rate of a live funding payment from the venue's rate history (trademesh/venues/live/funding_rates.py):
matched by funding time within the tolerance, never a neighbour's; one read per symbol for the
payments without a known rate, none for those known; NULL where the venue has no rate.

The exchange here is a stand-in for ccxt's client (a third-party library), answering
fetch_funding_rate_history as ccxt's binanceusdm and okx do (entries sorted oldest first,
`info` the venue's own entry); the payments come through LiveTrading.funding_payments.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import ccxt.pro
import pytest

from trademesh.core.domain.model import FundingPayment
from trademesh.venues.binanceusdm.spec import SPEC as BINANCE_USDM
from trademesh.venues.deribit.spec import SPEC as DERIBIT
from trademesh.venues.live.funding_rates import MATCH_TOLERANCE_MS, MISS_RETRY_S, FundingRates, RateBook
from trademesh.venues.live.trading import LiveTrading
from trademesh.venues.okx_swap.spec import SPEC as OKX_SWAP

D = Decimal
MS = 1_000_000
H = 3_600_000  # an hour in ms
T0 = 1739923200000  # a funding time
BTC, ETH = "BTC/USDT:USDT", "ETH/USDT:USDT"


def payment(index: int, symbol: str, ts_ms: int) -> dict[str, Any]:
    return {"id": str(index), "symbol": symbol, "code": "USDT", "amount": -0.5, "timestamp": ts_ms}


class Exchange:
    """ccxt's client: the account's funding history (oldest first from since, as Binance's
    income) and the public rate history, whose calls it notes."""

    def __init__(self, payments: list[dict[str, Any]], rates: dict[str, dict[int, str]], field: str) -> None:
        self.has = {"fetchFundingHistory": True, "fetchFundingRateHistory": True}
        self.payments, self.rates, self.field = payments, rates, field
        self.rate_calls: list[tuple[str, int, int, dict[str, Any]]] = []
        self.refuse: Exception | None = None

    async def fetch_funding_history(
        self, symbol: str | None, since: int | None, limit: int
    ) -> list[dict[str, Any]]:
        return [p for p in self.payments if since is None or p["timestamp"] >= since][:limit]

    async def fetch_funding_rate_history(
        self, symbol: str, since: int, limit: int, params: dict[str, Any]
    ) -> list[dict[str, Any]]:
        self.rate_calls.append((symbol, since, limit, params))
        if self.refuse is not None:
            raise self.refuse
        end = int(params["until"]) if "until" in params else int(params["after"]) - 1
        found = [
            {"info": {self.field: rate}, "symbol": symbol, "fundingRate": float(rate), "timestamp": t}
            for t, rate in sorted(self.rates.get(symbol, {}).items())
            if since <= t <= end
        ]
        return found[:limit]


@pytest.fixture(autouse=True)
def credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for venue in ("OKX_SWAP", "BINANCEUSDM", "DERIBIT"):
        monkeypatch.setenv(f"TRADEMESH_{venue}_API_KEY", "key")


def test_a_payment_takes_the_rate_of_its_own_funding_time_or_none() -> None:
    book = RateBook()
    book.add(T0 + 3, D("0.0001"))  # stamped 3 ms past the hour, as Binance does at times
    book.add(T0 + H, D("-0.0002"))
    assert book.rate_at(T0) == D("0.0001")
    assert book.rate_at(T0 + H + 40_000) == D("-0.0002"), "booked 40 s after its funding time"
    assert book.rate_at(T0 + MATCH_TOLERANCE_MS + 4) is None, "just past the tolerance: none"
    assert book.rate_at(T0 - H) is None, "a neighbour an hour away is never taken"
    assert book.rate_at(T0 + H // 2) is None
    assert RateBook().rate_at(T0) is None


async def test_binance_payments_get_their_rates_with_one_read_per_symbol_then_none() -> None:
    history = [
        payment(1, BTC, T0),
        payment(2, ETH, T0),
        payment(3, BTC, T0 + 8 * H),
        payment(4, ETH, T0 + 8 * H),
    ]
    rates = {BTC: {T0 - 8 * H: "0.5", T0 + 1: "0.00010000", T0 + 8 * H: "-0.00002475"}, ETH: {T0: "0.00003"}}
    exchange = Exchange(history, rates, "fundingRate")
    trading = LiveTrading(BINANCE_USDM, exchange, lambda: [])
    found = await trading.funding_payments(None, 0, 100)
    assert [(p.funding_id, p.rate) for p in found] == [
        ("1", D("0.0001")),
        ("2", D("0.00003")),
        ("3", D("-0.00002475")),
        ("4", None),  # ETH has no rate at its 08:00: NULL, not the 00:00 one
    ]
    tol = MATCH_TOLERANCE_MS
    assert sorted(exchange.rate_calls) == [
        (BTC, T0 - tol, 1000, {"until": T0 + 8 * H + tol}),
        (ETH, T0 - tol, 1000, {"until": T0 + 8 * H + tol}),
    ], "one read per symbol over its payments' window, the venue's page"
    again = await trading.funding_payments(None, 0, 100)
    assert again == found and len(exchange.rate_calls) == 2, "known rates and a recent miss cost no read"


async def test_a_miss_is_asked_again_after_a_while_and_a_cut_read_at_once() -> None:
    clock = [1000.0]
    exchange = Exchange([], {}, "fundingRate")
    rates = FundingRates(BINANCE_USDM.funding_rates, exchange, lambda call: call(), lambda: clock[0])
    given = [_payment(ETH, T0)]
    assert (await rates.attach(given))[0].rate is None
    clock[0] += MISS_RETRY_S - 1
    await rates.attach(given)
    assert len(exchange.rate_calls) == 1
    exchange.rates[ETH] = {T0: "0.0007"}  # the venue has it now
    clock[0] += 2
    assert (await rates.attach(given))[0].rate == D("0.0007")
    assert len(exchange.rate_calls) == 2

    # A read that filled its page may have cut the rates of later payments off: the next poll
    # reads again for those (and those only).
    far = T0 + 2000 * H
    hourly = {BTC: {T0 + i * H: "0.0001" for i in range(2001)}}
    full = Exchange([payment(1, BTC, T0), payment(2, BTC, far)], hourly, "fundingRate")
    trading = LiveTrading(BINANCE_USDM, full, lambda: [])
    assert [p.rate for p in await trading.funding_payments(None, 0, 10)] == [D("0.0001"), None]
    assert [p.rate for p in await trading.funding_payments(None, 0, 10)] == [D("0.0001")] * 2
    assert [call[1] for call in full.rate_calls] == [T0 - MATCH_TOLERANCE_MS, far - MATCH_TOLERANCE_MS]


async def test_okx_ends_the_read_with_after_and_takes_the_realized_rate() -> None:
    exchange = Exchange(
        [payment(9, BTC, T0 + 8 * H + 1500)], {BTC: {T0 + 8 * H: "0.0003000000000000"}}, "realizedRate"
    )
    rates = FundingRates(OKX_SWAP.funding_rates, exchange, lambda call: call())
    [rated] = await rates.attach([_payment(BTC, T0 + 8 * H + 1500)])
    assert rated.rate == D("0.0003")
    [(_, since, limit, params)] = exchange.rate_calls
    assert (since, limit, params) == (
        T0 + 8 * H + 1500 - MATCH_TOLERANCE_MS,
        400,
        {"after": str(T0 + 8 * H + 1500 + MATCH_TOLERANCE_MS + 1)},
    )


async def test_no_rate_history_leaves_the_rates_empty() -> None:
    unreadable = Exchange([], {BTC: {T0: "0.0001"}}, "fundingRate")
    unreadable.has = {"fetchFundingHistory": True}  # a ccxt client without the rate history
    given = [_payment(BTC, T0), _payment(BTC, T0, rate=D("0.002"))]
    assert (
        await FundingRates(BINANCE_USDM.funding_rates, unreadable, lambda call: call()).attach(given) == given
    )
    assert await FundingRates(DERIBIT.funding_rates, unreadable, lambda call: call()).attach(given) == given
    assert unreadable.rate_calls == []

    refusing = Exchange([], {}, "fundingRate")
    refusing.refuse = ccxt.BadSymbol('binanceusdm {"code":-1121,"msg":"Invalid symbol."}')
    rates = FundingRates(BINANCE_USDM.funding_rates, refusing, lambda call: call())
    assert [p.rate for p in await rates.attach(given)] == [None, D("0.002")], "a rate said is kept"

    failing = Exchange([], {}, "fundingRate")
    failing.refuse = ccxt.NetworkError("connection reset")
    with pytest.raises(ccxt.NetworkError):  # not reached: asked again next poll, not left NULL
        await FundingRates(BINANCE_USDM.funding_rates, failing, lambda call: call()).attach(given)


def _payment(symbol: str, ts_ms: int, rate: Decimal | None = None) -> FundingPayment:
    return FundingPayment(f"{symbol}-{ts_ms}-{rate}", symbol, "USDT", D("-1"), rate, None, ts_ms * MS)
