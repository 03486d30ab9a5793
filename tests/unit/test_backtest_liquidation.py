"""Liquidation in a backtest's replayed venue: the scenario of
tests/integration/test_sim_liquidation.py (a 10x isolated long of 5 BTC/USDT:USDT near 100, its
market falling) replayed from recorded events, and from bars, gives the same liquidation: the
engine's own order and fill at the bankruptcy price, with the liquidation fee, among our
executions (docs/derivatives.md, "Margin and liquidation")."""

from __future__ import annotations

from dataclasses import replace
from decimal import ROUND_CEILING, Decimal
from pathlib import Path

from trademesh.core.backtest.assemble import SIM_MARKET_KEYS, SIM_SYMBOL_KEYS, build, funding_terms
from trademesh.core.backtest.config import BacktestConfig
from trademesh.core.backtest.market import Latency, ReplayedMarket
from trademesh.core.backtest.outcome import outcome
from trademesh.core.backtest.session import drive_sync
from trademesh.core.backtest.summary import summary
from trademesh.core.backtest.synthetic import Walk, walk
from trademesh.core.domain.matching.config import ExchangeConfig, instruments, load_exchange, margin_terms
from trademesh.core.domain.matching.order_manager import FeeSchedule
from trademesh.core.domain.model import (
    Execution,
    MarginMode,
    OrderRequest,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
)
from trademesh.core.ledger.engine import chart

D = Decimal
PERP = "BTC/USDT:USDT"
# The sim test's config (its market keys, drift_per_s among them, are the sim's: left to it).
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
start_price = "100"
tick_size = "0.1"
lot_size = "0.001"
volatility_per_sqrt_s = 0
drift_per_s = -0.02
funding_interval_s = 86400
"""
# 100 falling 2 % a step (a second), a deep book around it: the buy fills at 100.1.
SPEC = Walk(symbol=PERP, steps=20, price=100.0, volatility=0.0, drift=-0.02, tick=D("0.1"), level_size=D(10))
MMR, FEE_RATE, TICK = D("0.004"), D("0.002"), D("0.1")
SHIPPED = Path("trademesh/core/inspector/default_policies.toml")


def exchange(tmp_path: Path) -> ExchangeConfig:
    path = tmp_path / "sim.toml"
    path.write_text(SIM)
    return load_exchange(path, SIM_MARKET_KEYS, SIM_SYMBOL_KEYS)


def replayed(config: ExchangeConfig) -> ReplayedMarket:
    fees = FeeSchedule(config.maker_fee_rate, config.taker_fee_rate)
    return ReplayedMarket(
        "sim", instruments(config, "sim"), fees, dict(config.balances), Latency(0, 0),
        start_ns=SPEC.start_ns, funding=funding_terms(config), margin=margin_terms(config),
    )  # fmt: skip


def expected(value: Decimal) -> tuple[Decimal, Decimal]:
    """The sim test's sums: the 10x long of 5 with entry notional `value` is closed where the loss
    and the fee spend its margin (value / 10), a long's price rounded up to the tick; its fee."""
    bankrupt = (value - value / 10) / (5 * (1 - FEE_RATE))
    price = (bankrupt / TICK).to_integral_value(ROUND_CEILING) * TICK
    return price, 5 * price * FEE_RATE


def liquidations(executions: list[tuple[int, Execution]]) -> list[Execution]:
    return [e for _, e in executions if e.order.liquidation]


def test_a_replayed_falling_market_liquidates_the_long_at_its_bankruptcy_price(tmp_path: Path) -> None:
    config = exchange(tmp_path)
    market = replayed(config)
    assert (market.leverage(PERP).leverage, market.leverage(PERP).mode) == (D(10), MarginMode.ISOLATED)
    events = list(walk(SPEC))
    market.on_market(events[0])
    market.submit(OrderRequest(PERP, Side.BUY, OrderType.MARKET, D(5), None, TimeInForce.IOC), SPEC.start_ns)
    entry = [e for _, e in market.advance(SPEC.start_ns) if e.fill is not None]
    value = sum((e.fill.price * e.fill.size for e in entry if e.fill is not None), D(0))
    assert value == D("490.5")  # the first step's mid 98.0 (100 x e^-0.02, to the tick), ask 98.1
    [position] = market.positions(PERP)
    assert position.margin is not None and position.margin.initial_margin == value / 10
    liquidation_price = position.margin.liquidation_price
    assert liquidation_price is not None  # 441.45 / 4.98 = 88.6445783...
    assert abs(liquidation_price - (value - value / 10) / (5 * (1 - MMR))) < D("1e-15")

    seen: list[Execution] = []
    for event in events[1:]:
        market.on_market(event)
        seen += liquidations(market.advance(event.ts_event_ns))
        if seen:
            break
    opened, filled = seen
    price, fee = expected(value)
    assert (opened.order.status, opened.fill) == (OrderStatus.OPEN, None)
    assert (filled.order.status, filled.order.client_order_id[:4], filled.order.side) == (
        OrderStatus.FILLED, "liq-", Side.SELL,
    )  # fmt: skip
    assert filled.fill is not None and filled.fill.liquidation
    assert (filled.fill.price, filled.fill.size, filled.fill.fee) == (price, D(5), fee)
    assert market.positions(PERP)[0].size == 0
    [usdt] = market.balances()
    entry_fee = value * D("0.001")
    assert (usdt.total, usdt.position_margin) == (D(1000) - entry_fee + (5 * price - value) - fee, D(0))


def test_bars_falling_through_the_liquidation_price_liquidate_as_the_sim_does(tmp_path: Path) -> None:
    market = replayed(exchange(tmp_path))
    market.fill_on_bars([PERP])
    start = SPEC.start_ns
    market.submit(OrderRequest(PERP, Side.BUY, OrderType.MARKET, D(5), None, TimeInForce.IOC), start)
    market.on_bar(PERP, [D(100), D("100.5"), D("99.5"), D(100)], start + 60_000_000_000)  # fills at 100
    assert [e.fill.price for _, e in market.advance(start + 60_000_000_000) if e.fill] == [D(100)]
    # LP (500 - 50) / 4.98 = 90.36: a bar to 85 passes it.
    market.on_bar(PERP, [D(100), D(100), D(85), D(86)], start + 120_000_000_000)
    [_, filled] = liquidations(market.advance(start + 120_000_000_000))
    price, fee = expected(D(500))
    assert filled.fill is not None and (filled.fill.price, filled.fill.fee) == (price, fee) == (
        D("90.2"),
        D("0.902"),
    )


def test_set_leverage_at_the_replayed_venue(tmp_path: Path) -> None:
    config = replace(exchange(tmp_path), leverage=D(1), margin_mode=MarginMode.CROSS)
    market = replayed(config)
    setting = market.set_leverage(PERP, D(20), MarginMode.ISOLATED)
    assert (setting.leverage, setting.mode, setting.max_leverage) == (D(20), MarginMode.ISOLATED, D(125))


LEVERAGED = """
maker_fee_rate = "0.0002"
taker_fee_rate = "0.0005"
leverage = "125"
margin_mode = "isolated"
[balances]
USDT = "1000000"
[[symbols]]
symbol = "BTC/USDT:USDT"
tick_size = "0.01"
lot_size = "0.00001"
min_size = "0.00001"
min_notional = "5"
funding_interval_s = 600
"""


def test_a_leveraged_strategys_backtest_shows_its_liquidation_and_its_books_agree(tmp_path: Path) -> None:
    """The trend strategy at 125x isolated on a 30-minute walk: the inspector reduces its long as
    it nears its liquidation price, the rest is liquidated at the bankruptcy price; the summary
    says so; the run's books hold what the venue holds."""
    (tmp_path / "sim.toml").write_text(LEVERAGED)
    # The shipped policies but for the leverage they allow (20x) and the distance to liquidation
    # an entry needs (2 %): 125x entries pass; a position within 1 % of it is still reduced.
    shipped = SHIPPED.read_text()
    policies = shipped.replace('max = "20"', 'max = "125"').replace('entry = "0.02"', 'entry = "0.001"')
    assert policies.count('"125"') == 1 and policies.count('"0.001"') == 1
    (tmp_path / "policies.toml").write_text(policies)
    spec = Walk(symbol=PERP, steps=1800, volatility=0.001)
    config = BacktestConfig(
        strategies=(Path("trademesh/core/detector/strategies/trend.toml"),), start_ns=spec.start_ns,
        end_ns=spec.start_ns + spec.steps * spec.step_ns, symbols=(PERP,), sample_s=60,
        sim_config=tmp_path / "sim.toml", policies=tmp_path / "policies.toml",
    )  # fmt: skip
    backtest = build(config)
    done = outcome(drive_sync(backtest, walk(spec)), backtest.settings.sample_ns)
    entry, *reduced, closing = done.fills
    assert (entry.side, closing.side, closing.strategy) == ("buy", "sell", "trend")
    [fill] = [e.fill for e in done.tape.orders if e.fill is not None and e.fill.liquidation]
    # The inspector saw the venue's margin reports (the replayed venue's, each second) and, the
    # position within 1 % of its liquidation price, reduced it by half (liquidation.
    # min_distance_open); the rest is liquidated at the same bankruptcy price: the entry's, as its
    # margin is the same share of its notional.
    assert [f.side for f in reduced] == ["sell"], "the inspector reduced it first"
    left = entry.size - sum((f.size for f in reduced), D(0))
    value = entry.price * entry.size
    bankrupt = (value - value / 125) / (entry.size * (1 - D("0.002")))
    price = (bankrupt / D("0.01")).to_integral_value(ROUND_CEILING) * D("0.01")
    assert (fill.price, fill.size, fill.fee) == (price, left, price * left * D("0.002"))
    assert closing.price == price and closing.ts_ns > max((f.ts_ns for f in reduced), default=0)
    line = next(text for text in summary(done) if text.startswith("liquidations:"))
    assert line == f"liquidations: 1 ({PERP} {left} at {price}) · fees {fill.fee.normalize():f} USDT"
    books = backtest.books
    assert books.refused == []
    venue_cash = books.core.books.balance(chart.venue_cash("sim", "USDT")).net_debit
    held = {b.asset: b.total for b in backtest.market.balances()}["USDT"]
    assert abs(venue_cash - held) < D("1e-12")


def test_an_intents_leverage_is_set_at_the_replayed_venue_before_its_entry(tmp_path: Path) -> None:
    """The advisor's [intent] leverage (50x) on each entry: the inspector's shell sets it at the
    replayed venue before the order, as the live executor sets it (GetLeverage, SetLeverage)."""
    sim = LEVERAGED.replace('leverage = "125"\nmargin_mode = "isolated"\n', "")
    (tmp_path / "sim.toml").write_text(sim)
    (tmp_path / "advisor.toml").write_text('[intent]\nleverage = "50"\n')
    shipped = SHIPPED.read_text()
    policies = shipped.replace('max = "20"', 'max = "125"').replace('entry = "0.02"', 'entry = "0.001"')
    (tmp_path / "policies.toml").write_text(policies)
    spec = Walk(symbol=PERP, steps=1200, volatility=0.001)  # its first entry comes at 918 s
    config = BacktestConfig(
        strategies=(Path("trademesh/core/detector/strategies/trend.toml"),), start_ns=spec.start_ns,
        end_ns=spec.start_ns + spec.steps * spec.step_ns, symbols=(PERP,), sample_s=60,
        sim_config=tmp_path / "sim.toml", advisor_config=tmp_path / "advisor.toml",
        policies=tmp_path / "policies.toml",
    )  # fmt: skip
    backtest = build(config)
    assert backtest.market.leverage(PERP).leverage == D(1), "the sim config's default"
    done = outcome(drive_sync(backtest, walk(spec)), backtest.settings.sample_ns)
    assert done.fills and done.fills[0].side == "buy"
    allowed = [v for v in done.tape.verdicts if v.allowed]
    assert allowed and dict(allowed[0].reasons[0].values)["leverage"] == "50"
    setting = backtest.market.leverage(PERP)
    assert (setting.leverage, setting.mode) == (D(50), MarginMode.CROSS)
