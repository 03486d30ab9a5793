"""The asset a spot fill's fee is charged in (issue 57 item 1, docs/ledger.md "Fees"): each spot
venue states its exchange's rule in its own spec.py, and the matching engine charges the fee
there. Binance, OKX and Bybit take it from what the fill brings in (a buy's in the base bought);
Kraken and Coinbase in the quote. Spot BTC/USDT, maker 0.1 %, taker 0.2 %."""

from __future__ import annotations

from decimal import Decimal

import pytest

from trademesh.core.domain.matching.exchange import SimExchange
from trademesh.core.domain.matching.fees import FeeAsset
from trademesh.core.domain.model import (
    Execution,
    Instrument,
    InstrumentKind,
    OrderRequest,
    OrderType,
    Side,
    TimeInForce,
)
from trademesh.venues.binance.spec import SPEC as BINANCE
from trademesh.venues.bybit.spec import SPEC as BYBIT
from trademesh.venues.coinbase.spec import SPEC as COINBASE
from trademesh.venues.kraken.spec import SPEC as KRAKEN
from trademesh.venues.live.spec import LiveSpec
from trademesh.venues.okx.spec import SPEC as OKX
from trademesh.venues.paper.matcher import PaperMatcher

D = Decimal
SPOT = Instrument(
    venue="paper-test", symbol="BTC/USDT", native_symbol="BTCUSDT", kind=InstrumentKind.SPOT,
    base_asset="BTC", quote_asset="USDT", settle_asset="USDT", tick_size=D("0.1"), lot_size=D("0.001"),
)  # fmt: skip
START = {"USDT": D("100000"), "BTC": D("1")}


def paper(rule: FeeAsset) -> tuple[PaperMatcher, list[Execution]]:
    exchange = SimExchange(
        "paper-test", [SPOT], maker_fee_rate=D("0.001"), taker_fee_rate=D("0.002"),
        balances=START, clock=lambda: 1_000, fee_asset=rule,
    )  # fmt: skip
    seen: list[Execution] = []
    matcher = PaperMatcher(exchange, [SPOT.symbol])
    matcher.executions.publish = seen.append
    matcher.book("BTC/USDT", [("100.0", "5")], [("100.5", "5")], is_snapshot=True)
    return matcher, seen


def take(matcher: PaperMatcher, side: Side, price: str, size: str) -> None:
    request = OrderRequest("BTC/USDT", side, OrderType.LIMIT, D(size), D(price), TimeInForce.IOC)
    matcher.settle("BTC/USDT")
    matcher.exchange.place(request)


def moved(matcher: PaperMatcher) -> dict[str, Decimal]:
    totals = {b.asset: b.total for b in matcher.exchange.balances()}
    return {asset: totals[asset] - START[asset] for asset in START}


def test_a_buy_on_a_received_asset_venue_pays_its_fee_in_the_base_it_bought() -> None:
    matcher, seen = paper(FeeAsset.RECEIVED)
    take(matcher, Side.BUY, "100.5", "2")
    # 2 BTC at 100.5 as taker: 201 USDT out, 2 - 2 x 0.002 = 1.996 BTC in.
    assert moved(matcher) == {"USDT": D("-201.0"), "BTC": D("1.996")}
    fill = next(e.fill for e in seen if e.fill is not None)
    assert (fill.fee, fill.fee_asset) == (D("0.004"), "BTC")
    # What the engine holds as the position is what came in: a close of it all can be sold.
    assert matcher.exchange.positions("BTC/USDT")[0].size == D("1.996")


def test_a_sell_on_a_received_asset_venue_pays_its_fee_in_the_quote_it_received() -> None:
    matcher, seen = paper(FeeAsset.RECEIVED)
    take(matcher, Side.SELL, "100.0", "0.5")
    # 50 USDT in, less 0.1 USDT of fee; 0.5 BTC out.
    assert moved(matcher) == {"USDT": D("49.9"), "BTC": D("-0.5")}
    fill = next(e.fill for e in seen if e.fill is not None)
    assert (fill.fee, fill.fee_asset) == (D("0.1000"), "USDT")


def test_a_buy_on_a_quote_venue_pays_its_fee_in_the_quote() -> None:
    matcher, seen = paper(FeeAsset.QUOTE)
    take(matcher, Side.BUY, "100.5", "2")
    assert moved(matcher) == {"USDT": D("-201.402"), "BTC": D("2")}
    fill = next(e.fill for e in seen if e.fill is not None)
    assert (fill.fee, fill.fee_asset) == (D("0.402"), "USDT")


def test_a_resting_buy_locks_no_fee_in_the_quote_when_the_fee_comes_off_the_base() -> None:
    matcher, _ = paper(FeeAsset.RECEIVED)
    request = OrderRequest("BTC/USDT", Side.BUY, OrderType.LIMIT, D("1"), D("99.0"), TimeInForce.GTC)
    order, _ = matcher.exchange.place(request)
    usdt = next(b for b in matcher.exchange.balances() if b.asset == "USDT")
    assert usdt.locked == D("99.0")
    matcher.trade("BTC/USDT", "98.9", "10", Side.SELL)  # through our price: we fill as maker
    assert moved(matcher) == {"USDT": D("-99.0"), "BTC": D("0.999")}
    usdt = next(b for b in matcher.exchange.balances() if b.asset == "USDT")
    assert usdt.locked == 0 and matcher.exchange.get(order.order_id).filled_size == D("1")


@pytest.mark.parametrize(
    ("spec", "rule"),
    [(BINANCE, FeeAsset.RECEIVED), (OKX, FeeAsset.RECEIVED), (BYBIT, FeeAsset.RECEIVED),
     (KRAKEN, FeeAsset.QUOTE), (COINBASE, FeeAsset.QUOTE)],
    ids=lambda v: getattr(v, "name", ""),
)  # fmt: skip
def test_each_spot_venue_states_its_exchanges_rule(spec: LiveSpec, rule: FeeAsset) -> None:
    assert spec.spot_fee_asset is rule
