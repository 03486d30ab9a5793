"""A backtest's replayed venue reckons margin at the marks the venue stated, where recorded
(docs/backtest-market.md, "Recorded marks"; SimExchange.replay_mark): a 10x isolated long of 5
BTC/USDT:USDT bought at 100.1 is liquidated when the recorded mark reaches its liquidation price
though the book never moved, and is not while the recorded mark holds though the book falls
through it; a mark left without a successor for longer than STATED_MARK_FRESH_NS gives way to the
book's mid again. A run reads the marks only where it trades a perpetual (run_kinds)."""

from __future__ import annotations

from decimal import ROUND_CEILING, Decimal
from pathlib import Path

from trademesh.common.v1 import common_pb2 as common
from trademesh.core.backtest.assemble import SIM_MARKET_KEYS, SIM_SYMBOL_KEYS, build, funding_terms, run_kinds
from trademesh.core.backtest.config import BacktestConfig
from trademesh.core.backtest.market import Latency, ReplayedMarket
from trademesh.core.domain.matching.config import instruments, load_exchange, margin_terms
from trademesh.core.domain.matching.exchange import STATED_MARK_FRESH_NS
from trademesh.core.domain.matching.order_manager import FeeSchedule
from trademesh.core.domain.model import Execution, OrderRequest, OrderType, Side, TimeInForce
from trademesh.marketdata.v1 import marketdata_pb2 as md

D = Decimal
PERP = "BTC/USDT:USDT"
SIM = f"""
taker_fee_rate = "0.001"
maker_fee_rate = "0"
liquidation_fee_rate = "0.002"
leverage = "10"
margin_mode = "isolated"
[balances]
USDT = "1000"
[[symbols]]
symbol = "{PERP}"
tick_size = "0.1"
lot_size = "0.001"
funding_interval_s = 86400
"""
T0 = 1_767_225_600 * 1_000_000_000
S = 1_000_000_000
# 5 bought at 100.1: notional 500.5, margin 50.05; LP = 450.45 / (5 x (1 - 0.4 %)) = 90.4518...;
# bankrupt 450.45 / (5 x (1 - 0.2 %)) = 90.2705..., up to the tick 90.3; fee 90.3 x 5 x 0.2 %.
VALUE = D("500.5")
LIQUIDATION = (VALUE - VALUE / 10) / (5 * (1 - D("0.004")))
BANKRUPT = ((VALUE - VALUE / 10) / (5 * (1 - D("0.002"))) / D("0.1")).to_integral_value(ROUND_CEILING) * D(
    "0.1"
)


def replayed(tmp_path: Path) -> ReplayedMarket:
    path = tmp_path / "sim.toml"
    path.write_text(SIM)
    config = load_exchange(path, SIM_MARKET_KEYS, SIM_SYMBOL_KEYS)
    fees = FeeSchedule(config.maker_fee_rate, config.taker_fee_rate)
    return ReplayedMarket(
        "sim", instruments(config, "sim"), fees, dict(config.balances), Latency(0, 0),
        start_ns=T0, funding=funding_terms(config), margin=margin_terms(config),
    )  # fmt: skip


def book(at: int, bid: str, ask: str) -> md.MarketEvent:
    event = md.MarketEvent(venue="sim", symbol=PERP, ts_event_ns=at, ts_recv_ns=at)
    event.book_snapshot.bids.add(price=bid, size="10")
    event.book_snapshot.asks.add(price=ask, size="10")
    return event


def trade(at: int, price: str) -> md.MarketEvent:
    event = md.MarketEvent(venue="sim", symbol=PERP, ts_event_ns=at, ts_recv_ns=at)
    event.trade.CopyFrom(md.Trade(trade_id=str(at), price=price, size="0.01", taker_side=common.SIDE_SELL))
    return event


def mark(at: int, price: str) -> md.MarketEvent:
    event = md.MarketEvent(venue="sim", symbol=PERP, ts_event_ns=at, ts_recv_ns=at)
    event.mark_price.mark_price = price
    return event


def long_of_five(tmp_path: Path) -> ReplayedMarket:
    market = replayed(tmp_path)
    market.on_market(book(T0, "100", "100.1"))
    market.submit(OrderRequest(PERP, Side.BUY, OrderType.MARKET, D(5), None, TimeInForce.IOC), T0)
    fills = [e.fill for _, e in market.advance(T0) if e.fill is not None]
    assert [(f.price, f.size) for f in fills] == [(D("100.1"), D(5))]
    [position] = market.positions(PERP)
    assert position.margin is not None and position.margin.liquidation_price is not None
    assert abs(position.margin.liquidation_price - LIQUIDATION) < D("1e-15")
    return market


def liquidated(market: ReplayedMarket, now: int) -> list[Execution]:
    return [e for _, e in market.advance(now) if e.order.liquidation and e.fill is not None]


def test_the_recorded_mark_liquidates_where_the_book_never_moved(tmp_path: Path) -> None:
    market = long_of_five(tmp_path)
    for second, price in ((1, "95"), (2, "90.5")):  # above the liquidation price: nothing
        market.on_market(mark(T0 + second * S, price))
        assert liquidated(market, T0 + second * S) == []
    [position] = market.positions(PERP)
    assert position.margin is not None and position.margin.mark_price == D("90.5"), "the stated mark"
    market.on_market(trade(T0 + 3 * S, "100"))  # the market itself stays at 100
    assert liquidated(market, T0 + 3 * S) == []
    market.on_market(mark(T0 + 4 * S, "90.4"))
    [done] = liquidated(market, T0 + 4 * S)
    assert done.fill is not None and done.ts_event_ns == T0 + 4 * S
    assert (done.fill.price, done.fill.size, done.fill.fee) == (BANKRUPT, D(5), BANKRUPT * 5 * D("0.002"))
    assert market.positions(PERP)[0].size == 0


def test_a_holding_mark_keeps_the_position_the_book_falls_through_until_it_goes_stale(tmp_path: Path) -> None:
    market = long_of_five(tmp_path)
    market.on_market(mark(T0 + S, "99.5"))
    market.on_market(book(T0 + 2 * S, "85", "85.1"))
    market.on_market(trade(T0 + 2 * S, "85"))  # the book's mid 85.05: past the liquidation price
    assert liquidated(market, T0 + 2 * S) == [], "the venue's mark held"
    later = T0 + S + STATED_MARK_FRESH_NS
    market.on_market(trade(later, "85"))
    assert liquidated(market, later) == [], "the mark is fresh to the last ns of its window"
    market.on_market(trade(later + 1, "85"))
    [done] = liquidated(market, later + 1)
    assert done.fill is not None and done.fill.price == BANKRUPT, "no mark since: the book's mid"


def test_a_run_reads_the_marks_only_where_it_trades_a_perpetual(tmp_path: Path) -> None:
    strategies = (Path("trademesh/core/detector/strategies/trend.toml"),)
    for name, symbol, kinds in (
        ("perp", PERP, ("book", "trade", "mark", "bar")),
        ("spot", "BTC/USDT", ("book", "trade", "bar")),
    ):
        path = tmp_path / f"{name}.toml"
        path.write_text(SIM.replace(PERP, symbol).replace("funding_interval_s = 86400\n", ""))
        config = BacktestConfig(
            strategies=strategies, start_ns=T0, end_ns=T0 + 60 * S, symbols=(symbol,), sim_config=path
        )
        assert run_kinds(build(config)) == kinds, name
