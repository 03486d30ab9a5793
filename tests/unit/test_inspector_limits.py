"""Hard limits under random sequences (hypothesis): intents, fills, partial fills, cancels and
price moves never take the book past a hard limit. A small venue model stands in for the
exchange: it fills at the mark, honours reduce-only (never past flat) and cancels on request."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.inspector_support import MS, T0, D, fill, intent, update
from trademesh.core.domain.model import OrderStatus, Side
from trademesh.core.inspector.engine.actions import CancelOrder, OrderAction, PlaceOrder
from trademesh.core.inspector.engine.core import InspectorCore
from trademesh.core.inspector.engine.market import MarketView
from trademesh.core.inspector.engine.policies import (
    ExposurePolicy,
    OrderPolicy,
    PolicySet,
    PositionPolicy,
    RatePolicy,
    SymbolLimit,
)

POLICIES = PolicySet(
    position=PositionPolicy(
        max_size=D(6), max_notional=D(400), symbols={"BTC/USDT": SymbolLimit(max_size=D("2.5"))}
    ),
    exposure=ExposurePolicy(max_gross=D(600), max_net=D(450)),
    orders=OrderPolicy(max_notional=D(260), max_open=6, price_band=D("0.02")),
    rate=RatePolicy(window_ms=1000, max_per_venue=6),
)
SYMBOLS = ("BTC/USDT", "ETH/USDT")
SIZES = [D(s) for s in ("0.5", "1", "1.5", "2", "2.5")]
OFFSETS = [D(s) for s in ("-0.01", "0", "0.005", "0.02", "0.03", "-0.02")]


@dataclass
class Venue:
    """What the exchange holds: open orders (by client id), positions, cancels asked for."""

    marks: dict[str, Decimal]
    open: dict[str, PlaceOrder] = field(default_factory=dict)
    filled: dict[str, Decimal] = field(default_factory=dict)
    positions: dict[str, Decimal] = field(default_factory=dict)
    cancels: list[str] = field(default_factory=list)

    def take(self, actions: tuple[OrderAction, ...]) -> None:
        for action in actions:
            if isinstance(action, PlaceOrder):
                self.open[action.client_order_id] = action
                self.filled.setdefault(action.client_order_id, Decimal(0))
            elif isinstance(action, CancelOrder):
                self.cancels.append(action.client_order_id)

    def fillable(self, order: PlaceOrder, share: Decimal) -> Decimal:
        remaining = order.size - self.filled[order.client_order_id]
        size = (remaining * share).quantize(D("0.5")) or remaining
        if not order.reduce_only:
            return min(size, remaining)
        pos = self.positions.get(order.symbol, Decimal(0))
        if pos * order.side.sign >= 0:
            return Decimal(0)  # a reduce-only order that would not reduce does not fill
        return min(size, remaining, abs(pos))


def market_of(venue: Venue, symbol: str) -> MarketView:
    mark = venue.marks[symbol]
    return MarketView(bid=mark - D("0.05"), ask=mark + D("0.05"), last=mark)


def check_limits(core: InspectorCore, venue: Venue, marks_moved: bool) -> None:
    """The hard limits on what the venue holds."""
    for symbol, pos in venue.positions.items():
        limit = POLICIES.position.limit_for(symbol)
        assert limit.max_size is not None and abs(pos) <= limit.max_size, (symbol, pos)
        if not marks_moved:
            assert limit.max_notional is not None and abs(pos) * venue.marks[symbol] <= limit.max_notional
    working = [o for o in venue.open.values() if not o.role.protective]
    assert len(working) <= 6, working
    if not marks_moved:
        gross = sum((abs(p) * venue.marks[s] for s, p in venue.positions.items()), Decimal(0))
        net = abs(sum((p * venue.marks[s] for s, p in venue.positions.items()), Decimal(0)))
        assert gross <= 600 and net <= 450, (gross, net)


def check_order(order: PlaceOrder, market: MarketView) -> None:
    value = order.price if order.price is not None else market.taker_price(order.side)
    assert value is not None and order.size * value <= 260


step = st.tuples(
    st.sampled_from(["intent", "intent", "intent", "fill", "fill", "fill", "cancel", "move", "wait"]),
    st.integers(0, 11),
    st.integers(0, 13),
)


def intent_step(core: InspectorCore, venue: Venue, a: int, b: int, now: int) -> None:
    symbol = SYMBOLS[a % 2]
    market = market_of(venue, symbol)
    offset = OFFSETS[(a // 2) % len(OFFSETS)]
    price = None if b % 5 == 0 else str(venue.marks[symbol] * (1 + offset))
    pos = venue.positions.get(symbol, Decimal(0))
    if b % 7 == 0 and pos != 0:  # an exit of the whole position
        made = intent(
            Side.SELL if pos > 0 else Side.BUY, str(abs(pos)), price, symbol=symbol, reduce_only=True
        )
    else:
        side = Side.BUY if b % 2 else Side.SELL
        made = intent(side, str(SIZES[(b // 2) % len(SIZES)]), price, symbol=symbol, at_ns=now)
    verdict = core.on_intent(made, market, now)
    for order in verdict.orders:
        check_order(order, market)
    venue.take(verdict.output.actions)


def fill_step(core: InspectorCore, venue: Venue, a: int, b: int, now: int) -> None:
    order = list(venue.open.values())[a % len(venue.open)]
    size = venue.fillable(order, D(b % 4 + 1) / 4)
    if size > 0:
        venue.filled[order.client_order_id] += size
        pos = venue.positions.get(order.symbol, Decimal(0))
        venue.positions[order.symbol] = pos + size * order.side.sign
        venue.take(core.on_fill("sim", fill(order, size, venue.marks[order.symbol]), now).actions)
    if venue.filled[order.client_order_id] == order.size or size == 0:
        status = OrderStatus.FILLED if size else OrderStatus.CANCELED
        venue.open.pop(order.client_order_id)
        venue.take(core.on_order_update(update(order, status), now).actions)


def cancel_step(core: InspectorCore, venue: Venue, a: int, now: int) -> None:
    done = venue.open.pop(venue.cancels.pop(a % len(venue.cancels)), None)
    if done is not None:
        venue.take(core.on_order_update(update(done, OrderStatus.CANCELED), now).actions)


def move_step(core: InspectorCore, venue: Venue, a: int, b: int, now: int) -> None:
    symbol = SYMBOLS[a % 2]
    venue.marks[symbol] = (venue.marks[symbol] * (1 + D(b % 21 - 10) / 200)).quantize(D("0.01"))
    venue.take(core.on_mark("sim", symbol, venue.marks[symbol], now).actions)


def run(core: InspectorCore, venue: Venue, steps: list[tuple[str, int, int]], moves: bool) -> None:
    now, moved = T0, False
    for kind, a, b in steps:
        now += 50 * MS
        if kind == "intent":
            intent_step(core, venue, a, b, now)
        elif kind == "fill" and venue.open:
            fill_step(core, venue, a, b, now)
        elif kind == "cancel" and venue.cancels:
            cancel_step(core, venue, a, now)
        elif kind == "move" and moves:
            move_step(core, venue, a, b, now)
            moved = True
        elif kind == "wait":
            now += a * 50 * MS
        check_limits(core, venue, moved)


def fresh() -> tuple[InspectorCore, Venue]:
    core = InspectorCore(POLICIES, D(100_000), T0)
    venue = Venue({"BTC/USDT": D(100), "ETH/USDT": D(40)})
    for symbol, mark in venue.marks.items():
        core.on_mark("sim", symbol, mark, T0)
    return core, venue


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(step, min_size=5, max_size=60))
def test_random_intents_fills_and_cancels_never_breach_a_hard_limit(
    steps: list[tuple[str, int, int]],
) -> None:
    run(*fresh(), steps, moves=False)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(step, min_size=5, max_size=60))
def test_with_price_moves_sizes_and_open_orders_stay_within_their_limits(
    steps: list[tuple[str, int, int]],
) -> None:
    run(*fresh(), steps, moves=True)


def test_the_venue_model_lets_the_sequences_reach_the_limits() -> None:
    """Not vacuous: a plain sequence fills an entry up to the BTC size limit and is refused past it."""
    core, venue = fresh()
    run(core, venue, [("intent", 2, 9), ("fill", 0, 3), ("intent", 2, 9)], moves=False)
    assert venue.positions["BTC/USDT"] == D("2.5")  # a limit buy of 2.5 at 99, filled
    assert sorted(o.role.value for o in venue.open.values()) == ["stop_loss", "take_profit"]
    assert core.book.orders.count_open() == 0  # a second 2.5 would make 5, past 2.5: refused
