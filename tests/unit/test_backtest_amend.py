"""A backtest amends a protective order as the live inspector does at a venue that amends
natively (the sim's engine): in place, the order renamed to the new client order id, its answer
handed to the core as the old order's end and the renamed order; an amendment the venue refuses
is the old order's cancel and the new one's placement, as the live executor falls back."""

from __future__ import annotations

from decimal import Decimal

from tests.unit.test_backtest_market import BALANCES, BTC, FEES, snapshot
from trademesh.advisor.v1 import messages_pb2 as am
from trademesh.common.v1 import common_pb2 as common
from trademesh.core.backtest.inspect import InspectStage, OrderDesk
from trademesh.core.backtest.market import Latency, ReplayedMarket
from trademesh.core.backtest.twins import ModelTiming, TwinArrivals, live_hearing
from trademesh.core.domain.model import (
    Amendment,
    Execution,
    OrderRequest,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
)
from trademesh.core.inspector.config import DEFAULT_POLICIES
from trademesh.core.inspector.convert import amended_away
from trademesh.core.inspector.engine.actions import OrderRole
from trademesh.core.inspector.engine.market import MarketView
from trademesh.risk.v1 import journal_pb2 as jr
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf

D = Decimal
SYMBOL = "BTC/USDT"
# The stop trails 5 % behind the best mark, moved by each step of 1 %, at once (no window).
TRAILING = '\n[protect]\ntrailing_stop = "0.05"\ntrailing_step = "0.01"\ncoalesce_ms = 0\n'


def _market() -> ReplayedMarket:
    market = ReplayedMarket("sim", [BTC], FEES, BALANCES, Latency(order_ns=10, report_ns=5))
    market.on_market(snapshot(0, [("99", "5")], [("100", "5")]))
    return market


def _limit(cid: str, price: str) -> OrderRequest:
    return OrderRequest(
        SYMBOL, Side.BUY, OrderType.LIMIT, D("0.1"), D(price), TimeInForce.GTC, client_order_id=cid
    )


def test_the_replayed_venue_amends_in_place_under_the_new_id_and_answers_it() -> None:
    market = _market()
    market.submit(_limit("old", "98"), 0)
    market.advance(100)
    change = Amendment(price=D("97"), client_order_id="new", reason="inspector: moved", unfilled_only=True)
    market.amend("old", change, _limit("new", "97"), 100)
    assert market.next_due_ns() == 110  # the order latency, as a placement
    reports = [e.order for _, e in market.advance(120)]
    assert [(o.client_order_id, o.price, o.status) for o in reports] == [("new", D(97), OrderStatus.OPEN)]
    [(at, answer)] = market.answers_due(200)
    assert at == 115 and answer.amended_from == "old"  # its report latency: answered though unasked
    assert (answer.order.client_order_id, answer.order.order_id) == ("new", reports[0].order_id)
    assert [o.client_order_id for o in market.open_orders()] == ["new"]  # one order, never two


def test_an_amendment_the_venue_refuses_is_the_old_orders_cancel_and_the_new_ones_placement() -> None:
    """Filled before the amendment arrived (its fills on their way to the core): refused at the
    venue, so the old order's cancel goes (finding it ended) and the new one is placed, as the
    live executor does on a refusal."""
    market = _market()
    market.submit(_limit("old", "100"), 0)  # marketable: filled on arrival
    change = Amendment(price=D("97"), client_order_id="new", unfilled_only=True)
    market.amend("old", change, _limit("new", "97"), 5)
    reports = [(e.order.client_order_id, e.order.status) for _, e in market.advance(200)]
    assert reports == [("old", OrderStatus.OPEN), ("old", OrderStatus.FILLED), ("new", OrderStatus.OPEN)]
    assert market.answers_due(10**6) == []  # no amendment happened: nothing to answer
    assert [o.client_order_id for o in market.open_orders()] == ["new"]


def _stage(market: ReplayedMarket) -> InspectStage:
    desk = OrderDesk(
        {SYMBOL: BTC}, market.submit, market.cancel, market.open_orders,
        lambda cid: next((o for o in market.open_orders() if o.client_order_id == cid), None),
        position=lambda symbol: D(0), held_at=market.held_at, amend=market.amend,
    )  # fmt: skip
    return InspectStage.start("sim", desk, DEFAULT_POLICIES.read_text() + TRAILING, D(100_000), 0)


def _run(stage: InspectStage, market: ReplayedMarket, until: int) -> list[Execution]:
    """The venue's reports and answers due by `until`, handed to the core as run.py does."""
    seen: list[Execution] = []
    for now in range(0, until + 1, 5):
        for at, answer in market.answers_due(now):
            stage.answer(answer.order, at, answer.amended_from)
        for at, execution in market.advance(now):
            stage.execution(execution, at)
            seen.append(execution)
    return seen


def _long_held() -> tuple[InspectStage, ReplayedMarket]:
    """A stage holding 0.1 long, bought at market with its stop at 95 and target at 120."""
    market = _market()
    stage = _stage(market)
    intent = am.Intent(
        intent_id="bt-1", decision_id="d", signal_id="s", venue="sim", symbol=SYMBOL,
        side=common.SIDE_BUY, size="0.1", entry_type=tf.ORDER_TYPE_MARKET, stop_loss="95",
        take_profit="120", strategy_id="trend", expires_at_ns=10**12, ts_intent_ns=0,
    )  # fmt: skip
    assert stage.intent(intent, MarketView(D(99), D(100), D(100)), 0).allowed
    _run(stage, market, 200)
    return stage, market


def test_a_trailing_stop_moves_in_place_in_a_backtest_never_leaving_the_position_without_a_stop() -> None:
    stage, market = _long_held()
    stops = [o for o in market.open_orders() if o.type.is_stop]
    assert [o.trigger_price for o in stops] == [D(95)]
    stage.mark(SYMBOL, D(104), 300)  # the best mark 104: the stop trails to 98.8, 99 on the grid
    seen = _run(stage, market, 600)
    stops = [o for o in market.open_orders() if o.type.is_stop]
    assert len(stops) == 1 and stops[0].trigger_price == D(99)
    assert stops[0].order_id == next(o for o in seen if o.order.type.is_stop).order.order_id  # the same order
    canceled = [e for e in seen if e.order.status is OrderStatus.CANCELED]
    assert canceled == []  # amended in place: no cancel at the venue
    working = {
        w.order.client_order_id for w in stage.core.book.orders.layers(("sim", SYMBOL), OrderRole.STOP_LOSS)
    }
    assert working == {stops[0].client_order_id}  # the core counts the renamed order alone


def test_a_recorded_run_amends_as_the_recorded_live_inspector_did() -> None:
    """The parity sessions were recorded when the live inspector amended by cancel and place:
    their backtest does too (the twins of the cancel and the placement); a session whose journal
    shows an order amended in place, in place; without the journal, as the inspector amends now."""
    renamed = tf.Order(client_order_id="old", status=tf.ORDER_STATUS_CANCELED)
    renamed.status_reason = amended_away(tf.Order(client_order_id="new"), "old").status_reason
    cancelled = tf.Order(client_order_id="old", status=tf.ORDER_STATUS_CANCELED, status_reason="inspector: x")
    recorded = {
        "in place": [jr.JournalEntry(now_ns=1, order_update=renamed)],
        "cancel and place": [jr.JournalEntry(now_ns=1, order_update=cancelled)],
    }
    timing = {k: TwinArrivals({}, 0, hearing=live_hearing(v)) for k, v in recorded.items()}
    assert timing["in place"].amends_in_place and not timing["cancel and place"].amends_in_place
    assert TwinArrivals({}, 0).amends_in_place and ModelTiming().amends_in_place
