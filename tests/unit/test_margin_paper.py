"""A paper venue's perpetual is margined and liquidated by the same engine as the sim's: an OKX
swap of 0.01 BTC contracts at 20x isolated (a paper config's leverage and margin_mode), its
venue's book falling through the liquidation price, is liquidated when the matcher's feed flushes
(trademesh/venues/paper/matcher.py), at the bankruptcy price with the liquidation fee."""

from __future__ import annotations

from decimal import Decimal

from trademesh.core.domain.matching.exchange import SimExchange
from trademesh.core.domain.model import (
    Execution,
    Instrument,
    InstrumentKind,
    MarginMode,
    OrderRequest,
    OrderType,
    Side,
    TimeInForce,
)
from trademesh.venues.paper.config import PaperConfig, paper_margin
from trademesh.venues.paper.matcher import PaperMatcher

D = Decimal
SWAP = Instrument(
    venue="paper-test", symbol="BTC/USDT:USDT", native_symbol="BTC-USDT-SWAP", kind=InstrumentKind.PERPETUAL,
    base_asset="BTC", quote_asset="USDT", settle_asset="USDT", tick_size=D("0.1"), lot_size=D("1"),
    contract_size=D("0.01"), contract_value=D("0.01"),
)  # fmt: skip


def paper(config: PaperConfig) -> tuple[SimExchange, PaperMatcher, list[Execution]]:
    exchange = SimExchange(
        "paper-test", [SWAP], maker_fee_rate=D("0.001"), taker_fee_rate=D("0.002"),
        balances={"USDT": D("1000")}, clock=lambda: 1_000, margin=paper_margin(config),
    )  # fmt: skip
    seen: list[Execution] = []
    matcher = PaperMatcher(exchange, [SWAP.symbol])
    matcher.executions.publish = seen.append
    return exchange, matcher, seen


def test_the_paper_default_is_1x_cross() -> None:
    exchange, _, _ = paper(PaperConfig())
    setting = exchange.leverage(SWAP.symbol)
    assert (setting.leverage, setting.mode) == (D(1), MarginMode.CROSS)


def test_a_paper_swap_is_liquidated_when_the_venues_book_falls_through_its_price() -> None:
    exchange, matcher, seen = paper(PaperConfig(leverage=D(20), margin_mode=MarginMode.ISOLATED))
    matcher.book(SWAP.symbol, [("99.9", "1000")], [("100", "1000")], is_snapshot=True)
    exchange.place(OrderRequest(SWAP.symbol, Side.BUY, OrderType.MARKET, D(100), None, TimeInForce.IOC))
    [position] = exchange.positions(SWAP.symbol)
    assert position.margin is not None
    # 100 contracts of 0.01 BTC at 100: notional 100, margin 5; LP = 95 / (1 x 0.996) = 95.38...
    assert (position.margin.initial_margin, position.margin.leverage) == (D(5), D(20))
    assert position.margin.liquidation_price == D("95.381526104417670683")

    matcher.book(SWAP.symbol, [("95.4", "1000")], [("95.5", "1000")], is_snapshot=True)
    matcher.flushed()  # mark 95.45: not yet
    assert not [e for e in seen if e.order.liquidation]
    matcher.book(SWAP.symbol, [("95.2", "1000")], [("95.3", "1000")], is_snapshot=True)
    matcher.flushed()  # mark 95.25
    fills = [e.fill for e in seen if e.fill is not None and e.fill.liquidation]
    # bankrupt: 95 / (1 x 0.998) = 95.1903..., up to the tick: 95.2; fee 95.2 x 0.2 %
    assert [(f.price, f.size, f.fee) for f in fills] == [(D("95.2"), D(100), D("0.1904"))]
    assert exchange.positions(SWAP.symbol)[0].size == 0
    [usdt] = exchange.balances()
    # 1,000 - 0.2 (entry fee, 100 x 0.2 %) + (95.2 - 100) - 0.1904
    assert (usdt.total, usdt.position_margin) == (D("994.8096"), D(0))
