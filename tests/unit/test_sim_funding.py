"""The sim's linear perpetuals: long and short positions, fee-only locks, and scheduled funding.

Figures are worked by hand from the documented rules (trademesh/core/domain/matching/funding.py): a fill moves
only the settle asset (its fee and the PnL it realises); at each funding time a position pays
size * mark * rate, the mark being the book's mid.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from trademesh.core.domain.matching.exchange import SimExchange
from trademesh.core.domain.matching.funding import (
    MAX_DUE_AT_ONCE,
    FundingHistory,
    FundingSchedule,
    FundingTerms,
)
from trademesh.core.domain.model import (
    FundingPayment,
    Instrument,
    InstrumentKind,
    OrderRequest,
    OrderType,
    Side,
    TimeInForce,
)
from trademesh.core.platform.errors import FailedPrecondition, InvalidArgument
from trademesh.venues.sim.config import SimConfig, load_config
from trademesh.venues.sim.symbols import instruments

D = Decimal
S = 1_000_000_000
BUY, SELL = Side.BUY, Side.SELL
PERP = "BTC/USDT:USDT"
PERP_CONFIG = """
[[symbols]]
symbol = "BTC/USDT:USDT"
start_price = "100"
tick_size = "0.1"
lot_size = "0.001"
funding_rate = "0.0001"
funding_interval_s = 10
"""


PERP_INSTRUMENT = Instrument(
    "sim", PERP, "BTCUSDT-PERP", InstrumentKind.PERPETUAL, "BTC", "USDT", "USDT", D("0.1"), D("0.001")
)


class Clock:
    """The exchange's clock, moved by the test."""

    def __init__(self, now_ns: int) -> None:
        self.now_ns = now_ns

    def __call__(self) -> int:
        return self.now_ns


def make(tmp_path: Path, clock: Clock, usdt: str = "1000") -> SimExchange:
    path = tmp_path / "sim.toml"
    path.write_text(PERP_CONFIG)
    config = load_config(path)
    item = config.symbols[0]
    exchange = SimExchange(
        "sim",
        instruments(config),
        maker_fee_rate=D("0.001"),
        taker_fee_rate=D("0.002"),
        balances={"USDT": D(usdt)},
        clock=clock,
        funding={PERP: FundingTerms(item.funding_rate, item.funding_interval_s)},
    )
    # A book around 100: 5 BTC bid at 99, 5 offered at 101 (mid 100).
    exchange.submit_synthetic(PERP, BUY, 990, 5000)
    exchange.submit_synthetic(PERP, SELL, 1010, 5000)
    return exchange


def limit(side: Side, price: str, size: str, **kw: object) -> OrderRequest:
    return OrderRequest(PERP, side, OrderType.LIMIT, D(size), D(price), TimeInForce.GTC, **kw)  # type: ignore[arg-type]


def market(side: Side, size: str, **kw: object) -> OrderRequest:
    return OrderRequest(PERP, side, OrderType.MARKET, D(size), None, TimeInForce.IOC, **kw)  # type: ignore[arg-type]


def usdt(exchange: SimExchange) -> tuple[Decimal, Decimal]:
    balance = next(b for b in exchange.balances() if b.asset == "USDT")
    return balance.free, balance.locked


# ---- config and instruments


def test_a_perpetual_symbol_is_a_linear_perpetual_instrument(tmp_path: Path) -> None:
    path = tmp_path / "sim.toml"
    path.write_text(PERP_CONFIG)
    config = load_config(path)
    assert (config.symbols[0].funding_rate, config.symbols[0].funding_interval_s) == (D("0.0001"), 10)
    [perp] = instruments(config)
    assert (perp.kind, perp.native_symbol) == (InstrumentKind.PERPETUAL, "BTCUSDT-PERP")
    assert (perp.base_asset, perp.quote_asset, perp.settle_asset, perp.contract_size) == (
        "BTC",
        "USDT",
        "USDT",
        D(1),
    )


def test_the_default_symbols_hold_no_perpetual() -> None:
    assert all(i.kind is InstrumentKind.SPOT for i in instruments(SimConfig()))


@pytest.mark.parametrize(
    ("text", "says"),
    [
        (
            '[[symbols]]\nsymbol = "BTC/USDT"\nstart_price = "100"\ntick_size = "0.1"\nlot_size = "1"\n'
            'funding_rate = "0.001"\n',
            r"symbols\[0\]\.funding_rate: is for perpetuals only",
        ),
        (PERP_CONFIG.replace("funding_interval_s = 10", "funding_interval_s = 0"), r"funding_interval_s"),
        (PERP_CONFIG.replace('funding_rate = "0.0001"', 'funding_rate = "0.5"'), r"funding_rate"),
    ],
)
def test_bad_funding_keys_are_refused(tmp_path: Path, text: str, says: str) -> None:
    path = tmp_path / "sim.toml"
    path.write_text(text)
    with pytest.raises(InvalidArgument, match=says):
        load_config(path)


# ---- the schedule


def test_funding_times_are_the_multiples_of_the_interval_after_opening() -> None:
    schedule = FundingSchedule(10, opened_ns=25 * S)
    assert schedule.due(29 * S) == []
    assert schedule.due(30 * S) == [30 * S]
    assert schedule.due(39 * S) == []
    assert schedule.due(61 * S) == [40 * S, 50 * S, 60 * S], "missed times are each paid, oldest first"
    assert schedule.due(61 * S) == []


def test_a_long_delay_is_caught_up_a_bounded_number_at_a_time() -> None:
    schedule = FundingSchedule(1, opened_ns=0)
    first = schedule.due((MAX_DUE_AT_ONCE + 50) * S)
    assert len(first) == MAX_DUE_AT_ONCE and first[0] == 1 * S
    assert schedule.due((MAX_DUE_AT_ONCE + 50) * S)[-1] == (MAX_DUE_AT_ONCE + 50) * S


def test_the_history_pages_oldest_first_from_since() -> None:
    history = FundingHistory(kept=3)
    assert history.page(None, 0, 10) == []
    for index in range(4):
        history.add(FundingPayment(f"id-{index}", PERP, "USDT", D(index), None, None, index * S))
    assert [p.funding_id for p in history.page(None, 0, 10)] == ["id-1", "id-2", "id-3"], "the last 3 kept"
    assert [p.funding_id for p in history.page(PERP, 2 * S, 1)] == ["id-2"]
    assert history.page("ETH/USDT:USDT", 0, 10) == []


# ---- trading a perpetual


def test_a_fill_moves_the_position_and_only_the_settle_asset(tmp_path: Path) -> None:
    exchange = make(tmp_path, Clock(5 * S))
    order, _ = exchange.place(limit(BUY, "101", "2"))
    assert order.filled_size == D(2)
    assert [b.asset for b in exchange.balances()] == ["USDT"], "a perpetual moves no BTC"
    assert usdt(exchange) == (D("1000") - D("0.404"), D(0))  # taker fee 101 * 2 * 0.002
    [position] = exchange.positions(PERP)
    assert (position.size, position.entry_price, position.realized_pnl) == (D(2), D(101), D(0))

    # Selling 3 at 99 closes the long at a loss of (99 - 101) * 2 and opens a short of 1.
    exchange.place(market(SELL, "3"))
    [position] = exchange.positions(PERP)
    assert (position.size, position.entry_price, position.realized_pnl) == (D(-1), D(99), D(-4))
    assert usdt(exchange) == (D("1000") - D("0.404") - D(4) - D("0.594"), D(0))


def test_a_resting_perpetual_order_locks_its_worst_fee_only(tmp_path: Path) -> None:
    exchange = make(tmp_path, Clock(5 * S))
    sell, _ = exchange.place(limit(SELL, "150", "10"))  # a short from flat: no BTC needed
    assert usdt(exchange) == (D(1000) - D(3), D(3))  # 150 * 10 * max(0.001, 0.002)
    exchange.cancel(sell.order_id)
    assert usdt(exchange) == (D(1000), D(0))


def test_the_fee_lock_is_refused_when_the_settle_asset_is_short(tmp_path: Path) -> None:
    exchange = make(tmp_path, Clock(5 * S), usdt="1")
    with pytest.raises(FailedPrecondition, match="insufficient USDT"):
        exchange.place(limit(BUY, "100", "10"))  # locks 2 USDT of fees


def test_reduce_only_is_trimmed_to_the_position_and_refused_when_it_would_add(tmp_path: Path) -> None:
    exchange = make(tmp_path, Clock(5 * S))
    with pytest.raises(FailedPrecondition, match="reduce_only"):
        exchange.place(market(SELL, "1", reduce_only=True))  # flat
    exchange.place(market(SELL, "2"))  # short 2 at 99
    with pytest.raises(FailedPrecondition, match="reduce_only"):
        exchange.place(market(SELL, "1", reduce_only=True))
    closed, _ = exchange.place(market(BUY, "5", reduce_only=True))
    assert closed.size == D(2) and closed.filled_size == D(2)
    assert exchange.positions(PERP)[0].size == 0


# ---- funding


def test_positions_pay_or_receive_funding_at_each_funding_time(tmp_path: Path) -> None:
    clock = Clock(5 * S)
    exchange = make(tmp_path, clock)
    exchange.place(limit(BUY, "101", "2"))  # long 2
    free_before, _ = usdt(exchange)
    clock.now_ns = 9 * S
    assert exchange.settle_funding() == [], "the first funding time is 10 s"
    clock.now_ns = 10 * S
    [paid] = exchange.settle_funding()
    # The book: 5 bid at 99, 3 left at 101: mark 100; a long pays 2 * 100 * 0.0001.
    assert (paid.symbol, paid.asset, paid.amount, paid.rate, paid.position_size, paid.ts_ns) == (
        PERP,
        "USDT",
        D("-0.02"),
        D("0.0001"),
        D(2),
        10 * S,
    )
    assert paid.funding_id == "BTCUSDT-PERP-10000"
    assert usdt(exchange)[0] == free_before - D("0.02")

    exchange.place(market(SELL, "3"))  # short 1
    free_short, _ = usdt(exchange)
    clock.now_ns = 20 * S
    [received] = exchange.settle_funding()
    assert (received.amount, received.position_size) == (D("0.01"), D(-1)), "a short receives"
    assert usdt(exchange)[0] == free_short + D("0.01")

    exchange.place(market(BUY, "1"))  # flat
    clock.now_ns = 30 * S
    assert exchange.settle_funding() == [], "a flat position pays nothing"
    listed = exchange.funding_payments(None, 0, 100)
    assert [p.funding_id for p in listed] == ["BTCUSDT-PERP-10000", "BTCUSDT-PERP-20000"]
    assert exchange.funding_payments(PERP, 11 * S, 100) == [received]
    assert exchange.funding_payments(PERP, 0, 1) == [paid]


def test_a_negative_rate_has_shorts_pay_longs(tmp_path: Path) -> None:
    clock = Clock(5 * S)
    exchange = SimExchange(
        "sim",
        [
            Instrument(
                "sim",
                PERP,
                "BTCUSDT-PERP",
                InstrumentKind.PERPETUAL,
                "BTC",
                "USDT",
                "USDT",
                D("0.1"),
                D("0.001"),
            )
        ],
        maker_fee_rate=D(0),
        taker_fee_rate=D(0),
        balances={"USDT": D(100)},
        clock=clock,
        funding={PERP: FundingTerms(D("-0.0005"), 60)},
    )
    exchange.submit_synthetic(PERP, BUY, 990, 5000)
    exchange.submit_synthetic(PERP, SELL, 1010, 5000)
    exchange.place(market(SELL, "4"))  # short 4 at 99
    clock.now_ns = 60 * S
    [paid] = exchange.settle_funding()
    assert paid.amount == D("-0.2")  # -(-4 * 100 * -0.0005)
    assert usdt(exchange) == (D(100) - D("0.2"), D(0))


def test_an_exchange_without_perpetuals_never_reads_the_clock_for_funding() -> None:
    reads: list[int] = []

    def clock() -> int:
        reads.append(1)
        return 0

    spot = instruments(SimConfig())
    exchange = SimExchange("sim", spot, maker_fee_rate=D(0), taker_fee_rate=D(0), balances={}, clock=clock)
    assert exchange.settle_funding() == [] and reads == []
    assert exchange.funding_payments(None, 0, 100) == []


def test_payments_of_several_perpetuals_are_listed_in_time_order(tmp_path: Path) -> None:
    clock = Clock(5 * S)
    eth = Instrument(
        "sim",
        "ETH/USDT:USDT",
        "ETHUSDT-PERP",
        InstrumentKind.PERPETUAL,
        "ETH",
        "USDT",
        "USDT",
        D("0.1"),
        D("0.01"),
    )
    exchange = SimExchange(
        "sim",
        [PERP_INSTRUMENT, eth],
        maker_fee_rate=D(0),
        taker_fee_rate=D(0),
        balances={"USDT": D(1000)},
        clock=clock,
        funding={PERP: FundingTerms(D("0.0001"), 10), eth.symbol: FundingTerms(D("0.0002"), 4)},
    )
    for symbol, lots in ((PERP, 5000), (eth.symbol, 500)):  # 5 BTC or ETH each side, mid 100
        exchange.submit_synthetic(symbol, BUY, 990, lots)
        exchange.submit_synthetic(symbol, SELL, 1010, lots)
        exchange.place(OrderRequest(symbol, BUY, OrderType.MARKET, D(1), None, TimeInForce.IOC))
    clock.now_ns = 21 * S  # BTC funds at 10 and 20 s, ETH at 8, 12, 16 and 20 s: one check
    paid = exchange.settle_funding()
    assert [(p.symbol[:3], p.ts_ns // S) for p in paid] == [
        ("ETH", 8),
        ("BTC", 10),
        ("ETH", 12),
        ("ETH", 16),
        ("BTC", 20),
        ("ETH", 20),
    ]
    first = exchange.funding_payments(None, 0, 3)
    assert [p.ts_ns // S for p in first] == [8, 10, 12], "a page cut at its limit skips no earlier payment"
    assert {p.amount for p in paid if p.symbol == PERP} == {D("-0.01")}  # 1 * 100 * 0.0001
    assert {p.amount for p in paid if p.symbol == eth.symbol} == {D("-0.02")}  # 1 * 100 * 0.0002


def test_a_reduce_only_stop_loss_closes_a_perpetual_position(tmp_path: Path) -> None:
    exchange = make(tmp_path, Clock(5 * S))
    exchange.place(limit(BUY, "101", "2"))  # long 2 at 101
    stop, _ = exchange.place(
        OrderRequest(
            PERP,
            SELL,
            OrderType.STOP_MARKET,
            D(5),
            None,
            TimeInForce.IOC,
            reduce_only=True,
            trigger_price=D("99.5"),
        )
    )
    assert usdt(exchange)[1] == 0, "a waiting stop locks nothing"
    exchange.submit_synthetic(PERP, SELL, None, 100)  # a synthetic sale at 99 crosses the trigger
    done = exchange.get(stop.order_id)
    assert (done.triggered, done.size, done.filled_size) == (True, D(2), D(2)), "trimmed to the position"
    [position] = exchange.positions(PERP)
    assert (position.size, position.realized_pnl) == (D(0), D(-4))  # (99 - 101) * 2
    # Fees: 101 * 2 * 0.002 to open, 99 * 2 * 0.002 to close; the loss of 4.
    assert usdt(exchange) == (D(1000) - D("0.404") - D("0.396") - D(4), D(0))
