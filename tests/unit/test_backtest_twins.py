"""The backtest's orders at their live twins' recorded arrivals (trademesh.core.backtest.twins): the pairing
(an intent's order by its signal; a protective one by the last intent's signal on its symbol,
its role and its number since), a paired order arriving at its twin's time, its cancel at the
twin's, and an order without a twin keeping the latency model."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from functools import partial
from typing import Any

import pytest

from tests.unit.test_backtest_market import BALANCES, BTC, FEES, snapshot
from trademesh.advisor.v1 import messages_pb2 as am
from trademesh.common.v1 import common_pb2 as common
from trademesh.core.backtest.config import backtest_config
from trademesh.core.backtest.inspect import InspectStage, OrderDesk
from trademesh.core.backtest.market import Latency, ReplayedMarket
from trademesh.core.backtest.recorded_orders import OrderOutcome, RecordedOrder, outcomes
from trademesh.core.backtest.twins import (
    Held,
    ModelTiming,
    PlannedOrder,
    TwinArrivals,
    live_checks,
    live_hearing,
    live_intents,
    live_plan,
    live_repeats,
    live_twins,
)
from trademesh.core.detector.config import example_strategies
from trademesh.core.domain.convert import execution_to_pb
from trademesh.core.domain.model import (
    Execution,
    Fill,
    Liquidity,
    Order,
    OrderRequest,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
)
from trademesh.core.inspector.config import DEFAULT_POLICIES
from trademesh.core.inspector.convert import market_to_pb
from trademesh.core.inspector.engine.actions import OrderRole, PlaceOrder
from trademesh.core.inspector.engine.events import RiskOutput, RiskVerdict
from trademesh.core.inspector.engine.ids import entry_order_id
from trademesh.core.inspector.engine.market import MarketView
from trademesh.core.platform.errors import InvalidArgument
from trademesh.risk.v1 import journal_pb2 as jr
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf

D = Decimal
SYMBOL = "BTC/USDT"
NOTHING = OrderOutcome(OrderStatus.OPEN, D(0), ())
SIGNAL = ("trend", SYMBOL, 1_000)
LATER = ("trend", SYMBOL, 9_000)


def _decision(intent_id: str, signal: tuple[str, str, int]) -> am.Decision:
    strategy, symbol, ts = signal
    intent = am.Intent(intent_id=intent_id, strategy_id=strategy, symbol=symbol, ts_signal_ns=ts)
    return am.Decision(decision_id=f"d-{intent_id}", intent=intent)


def _live(cid: str, arrival: int, cancel: int | None = None, **request: Any) -> RecordedOrder:
    fields: dict[str, Any] = {"type": OrderType.LIMIT, "price": D(100), "size": D(1), **request}
    order = OrderRequest(SYMBOL, Side.BUY, time_in_force=TimeInForce.GTC, client_order_id=cid, **fields)
    return RecordedOrder(order, arrival, cancel, NOTHING)


def _stop(cid: str, size: str, arrival: int, cancel: int | None = None) -> RecordedOrder:
    return _live(
        cid, arrival, cancel, type=OrderType.MARKET, price=None, size=D(size), reduce_only=True,
        trigger_price=D(90),
    )  # fmt: skip


def _target(cid: str, size: str, arrival: int, cancel: int | None = None) -> RecordedOrder:
    return _live(cid, arrival, cancel, reduce_only=True, price=D(110), size=D(size))


def _place(cid: str, role: OrderRole, intent_id: str = "", size: str = "1") -> PlaceOrder:
    return PlaceOrder(
        cid,
        "sim",
        SYMBOL,
        Side.BUY,
        OrderType.LIMIT,
        D(size),
        D(100),
        TimeInForce.GTC,
        False,
        role,
        intent_id,
    )


def _session() -> list[RecordedOrder]:
    """A live session: an entry of SIGNAL filled in two parts, its stop and target for each
    position (0.4, then 1), a flatten and an order by hand (no twins of anything), then LATER's
    entry and its stop."""
    return [
        _live(entry_order_id("live-1"), 4_000),
        _stop("s1", "0.4", 4_100, cancel=7_000),
        _target("t1", "0.4", 4_100, cancel=5_000),
        _target("t2", "1", 5_010),
        _live("flatten", 6_000, type=OrderType.MARKET, price=None, reduce_only=True),
        _live("by-hand", 6_500),
        _live(entry_order_id("live-2"), 12_000),
        _stop("s2", "1", 12_100),
    ]


def _twins(order_ns: int = 20) -> TwinArrivals:
    intents = live_intents([_decision("live-1", SIGNAL), _decision("live-2", LATER)])
    return TwinArrivals(live_twins(_session(), intents), order_ns)


def test_live_orders_are_keyed_by_their_intents_signal_role_and_size() -> None:
    twins = {key: order.request.client_order_id for key, order in _twins().twins.items()}
    assert twins == {
        (SIGNAL, "intent", D(0)): entry_order_id("live-1"),
        (SIGNAL, "stop_loss", D("0.4")): "s1",
        (SIGNAL, "take_profit", D("0.4")): "t1",
        (SIGNAL, "take_profit", D(1)): "t2",
        (LATER, "intent", D(0)): entry_order_id("live-2"),
        (LATER, "stop_loss", D(1)): "s2",
    }


def test_each_backtest_order_arrives_at_its_twins_time_and_the_rest_keep_the_model() -> None:
    twins = _twins()
    twins.intent(am.Intent(intent_id="bt-1", strategy_id="trend", symbol=SYMBOL, ts_signal_ns=1_000))
    twins.intent(am.Intent(intent_id="bt-x", strategy_id="trend", symbol=SYMBOL, ts_signal_ns=2_000))
    assert twins.place(_place("e1", OrderRole.ENTRY, "bt-1"), 1_000) == 4_000
    assert twins.place(_place("sl", OrderRole.STOP_LOSS, size="0.4"), 4_050) == 4_100
    assert twins.place(_place("tp", OrderRole.TAKE_PROFIT, size="0.4"), 4_050) == 4_100
    # Live had none: the model's delay (20).
    assert twins.place(_place("tp2", OrderRole.TAKE_PROFIT, size="0.7"), 4_600) == 4_620
    assert twins.place(_place("tp3", OrderRole.TAKE_PROFIT, size="1.0"), 4_990) == 5_010  # the same step
    # Its twin is taken: the model's delay, and not before tp3, sent before it (the live shell
    # sends in turn).
    assert twins.place(_place("tp4", OrderRole.TAKE_PROFIT), 4_985) == 5_010
    assert twins.place(_place("fl", OrderRole.FLATTEN), 6_000) == 6_020
    # An intent the live session did not make (another signal time), and what follows it.
    assert twins.place(_place("e2", OrderRole.ENTRY, "bt-x"), 7_000) == 7_020
    assert twins.place(_place("sl2", OrderRole.STOP_LOSS), 7_500) == 7_520
    assert (twins.paired, twins.unpaired) == (4, 5)


def test_an_order_whose_twin_is_already_past_arrives_at_once() -> None:
    """Not the model's 20 ns later: as near its twin's time as it can (a stop arriving after the
    trade that triggered its twin would sweep another book); it is paired with the twin."""
    twins = _twins()
    twins.intent(am.Intent(intent_id="bt-1", strategy_id="trend", symbol=SYMBOL, ts_signal_ns=1_000))
    assert twins.place(_place("e1", OrderRole.ENTRY, "bt-1"), 4_001) == 4_001
    twin = twins.twin_of("e1")
    assert twin is not None and twin.request.client_order_id == entry_order_id("live-1")
    assert (twins.paired, twins.unpaired) == (1, 0)


def test_a_cancel_arrives_at_the_twins_or_at_once_and_never_before_its_order() -> None:
    twins = _twins(order_ns=20)
    twins.intent(am.Intent(intent_id="bt-1", strategy_id="trend", symbol=SYMBOL, ts_signal_ns=1_000))
    twins.place(_place("e1", OrderRole.ENTRY, "bt-1"), 1_000)
    # The live entry still worked at the session's end: at once, but not before its arrival.
    assert twins.cancel("e1", 2_000) == 4_000
    twins.place(_place("sl", OrderRole.STOP_LOSS, size="0.4"), 4_050)
    twins.place(_place("tp", OrderRole.TAKE_PROFIT, size="0.4"), 4_050)
    twins.place(_place("lone", OrderRole.TAKE_PROFIT, size="0.7"), 4_500)  # no twin: arrives at 4,520
    assert twins.cancel("lone", 4_510) == 4_520  # at once, but not before its order
    assert twins.cancel("lone", 4_600) == 4_600
    assert twins.cancel("tp", 5_400) == 5_400  # the twin's (5,000) is past: at once
    assert twins.cancel("sl", 6_000) == 7_000  # the twin's recorded cancel
    assert twins.cancel("unknown", 2_000) is None  # not the inspector's: the model


def test_a_cancel_of_an_order_whose_twin_ended_uncancelled_arrives_after_the_twins_end() -> None:
    """Live, the stop filled before the cancel reached the venue (the shell sends in turn, and
    heard the fill that asked for the cancel late): the backtest's cancel changes nothing before
    the twin's end either, so its stop fills as the twin did."""
    filled = OrderOutcome(OrderStatus.FILLED, D("0.4"), ())
    stop = replace(_stop("s1", "0.4", 4_100), outcome=filled, ended_ns=6_000)
    twins = TwinArrivals(live_twins([_live(entry_order_id("live-1"), 4_000), stop],
                                    live_intents([_decision("live-1", SIGNAL)])), 20)  # fmt: skip
    twins.intent(am.Intent(intent_id="bt-1", strategy_id="trend", symbol=SYMBOL, ts_signal_ns=1_000))
    twins.place(_place("e1", OrderRole.ENTRY, "bt-1"), 1_000)
    assert twins.place(_place("sl", OrderRole.STOP_LOSS, size="0.4"), 4_050) == 4_100
    assert twins.cancel("sl", 4_200) == 6_001


def _stage(twins: TwinArrivals, sent: list[tuple[str, int, int | None]], position: str = "0") -> InspectStage:
    desk = OrderDesk(
        {SYMBOL: BTC},
        lambda request, now, at: sent.append((request.client_order_id, now, at)),
        lambda cid, now, at: None,
        list,
        lambda cid: None,
        twins,
        lambda symbol: D(position),
    )
    return InspectStage.start("sim", desk, DEFAULT_POLICIES.read_text(), D(100_000), 0)


def _intent(intent_id: str, ts_signal_ns: int) -> am.Intent:
    return am.Intent(
        intent_id=intent_id, decision_id="d", signal_id="s", venue="sim", symbol=SYMBOL,
        side=common.SIDE_BUY, size="0.1", entry_type=tf.ORDER_TYPE_LIMIT, entry_price="100",
        stop_loss="99", take_profit="104", time_in_force=tf.TIME_IN_FORCE_GTC, strategy_id="trend",
        expires_at_ns=10**12, ts_intent_ns=ts_signal_ns, ts_signal_ns=ts_signal_ns,
    )  # fmt: skip


def test_the_inspectors_entry_is_sent_to_arrive_at_its_twins_time() -> None:
    twins, sent = _twins(), list[tuple[str, int, int | None]]()
    stage = _stage(twins, sent)
    for intent, now in ((_intent("bt-1", 1_000), 1_000), (_intent("bt-2", 2_000), 2_000)):
        twins.intent(intent)
        assert stage.intent(intent, MarketView(D(99), D(100), D(100)), now).allowed
    # bt-2's entry has no twin: the model's delay, but not before bt-1's, sent before it.
    assert sent == [(entry_order_id("bt-1"), 1_000, 4_000), (entry_order_id("bt-2"), 2_000, 4_000)]


def _filled(order: PlaceOrder, size: str, at: int) -> Execution:
    done = Order(
        "sim", "v-1", order.client_order_id, SYMBOL, order.side, order.type, order.time_in_force,
        order.price, order.size, filled_size=D(size), status=OrderStatus.PARTIALLY_FILLED,
    )  # fmt: skip
    fill = Fill("f-1", "v-1", order.client_order_id, SYMBOL, order.side, D(100), D(size), D(0), "USDT",
                Liquidity.MAKER, "t-1", at)  # fmt: skip
    return Execution(at, done, fill)


@pytest.mark.parametrize(("venue_position", "paired"), [("0.04", True), ("0.1", False)])
def test_a_protective_order_is_paired_by_the_size_the_venue_holds_it_at(
    venue_position: str, paired: bool
) -> None:
    """The sim sizes a reduce-only order to the position it reduces, and a live twin's size is
    recorded so: a stop planned for the whole entry while the venue's position is smaller (a
    stop's fills on their way) is paired by the venue's size, the size it will be held at."""
    session = [_live(entry_order_id("live-1"), 4_000), _stop("s-trimmed", "0.04", 4_100)]
    twins = TwinArrivals(live_twins(session, live_intents([_decision("live-1", SIGNAL)])), 20)
    sent: list[tuple[str, int, int | None]] = []
    stage = _stage(twins, sent, venue_position)
    intent = _intent("bt-1", 1_000)
    twins.intent(intent)
    verdict = stage.intent(intent, MarketView(D(99), D(100), D(100)), 1_000)
    stage.execution(_filled(verdict.orders[0], "0.1", 4_050), 4_070)
    stops = [(at, cid) for cid, _, at in sent if cid != entry_order_id("bt-1")]
    assert len(stops) == 2  # the stop and the target, both for 0.1
    assert (4_100 in {at for at, _ in stops}) is paired


def test_the_replayed_venue_takes_an_order_at_the_arrival_given_else_after_its_latency() -> None:
    market = ReplayedMarket("sim", [BTC], FEES, BALANCES, Latency(order_ns=20))
    ask = OrderRequest(SYMBOL, Side.BUY, OrderType.LIMIT, D("0.5"), D(100), TimeInForce.IOC)
    market.submit(replace(ask, client_order_id="model"), 0)  # arrives at 20: the ask is there
    market.submit(replace(ask, client_order_id="twin"), 0, 40)  # arrives at 40: the ask is gone
    market.on_market(snapshot(10, [("99", "1")], [("100", "1")]))
    market.on_market(snapshot(30, [("99", "1")], [("101", "1")]))
    found = outcomes([e for _, e in market.advance(50)])
    assert (found["model"].status, found["model"].filled_size) == (OrderStatus.FILLED, D("0.5"))
    assert (found["twin"].status, found["twin"].filled_size) == (OrderStatus.EXPIRED, D(0))


def test_the_latency_option_is_model_or_recorded() -> None:
    options = {"strategies": [str(p) for p in example_strategies()], "from": "2026-01-01", "to": "2026-01-02"}
    assert backtest_config(options, {}).latency == "model"
    assert backtest_config(options, {"latency": "recorded"}).latency == "recorded"
    with pytest.raises(InvalidArgument) as bad:
        backtest_config(options, {"latency": "live"})
    assert bad.value.violations[0].field == "latency"
    assert "model, recorded" in bad.value.violations[0].description


def test_the_inspector_checks_an_intent_when_the_live_one_had_it_its_live_decisions_time() -> None:
    decisions = [(4_000, _decision("a", SIGNAL)), (12_000, _decision("b", LATER))]
    decisions.append((13_000, am.Decision(decision_id="blocked")))  # no intent: nothing to check
    checks = live_checks(decisions)
    assert checks == {SIGNAL: 4_000, LATER: 12_000}
    twins = TwinArrivals({}, 20, checks)
    assert twins.check_at(_intent("bt-1", 1_000)) == 4_000  # the same signal's live decision
    assert twins.check_at(_intent("bt-2", 2_000)) is None  # no live intent on that signal: at once
    assert ModelTiming().check_at(_intent("bt-1", 1_000)) is None


def test_with_the_live_journal_an_intent_is_checked_when_the_live_inspector_took_it() -> None:
    """The live intent reaches the inspector a bus hop after its decision, and the fills it heard
    meanwhile moved its position (a stop's fills heard between the decision and the intent: the
    position less than at the decision, the intent allowed under the notional limit). With the
    journal, the backtest's inspector checks the intent when the live one took it; without an
    entry of that signal, at the live decision's time."""
    twins = TwinArrivals(
        {}, 20, live_checks([(4_000, _decision("a", SIGNAL)), (12_000, _decision("b", LATER))])
    )
    taken = _intent("live-a", 1_000)
    twins.hearing = live_hearing(
        [jr.JournalEntry(now_ns=4_071, intent=jr.JournalIntent(intent=taken)), jr.JournalEntry(now_ns=5_000)]
    )
    assert twins.hearing.intents == {SIGNAL: 4_071}
    assert twins.check_at(_intent("bt-1", 1_000)) == 4_071
    assert twins.check_at(_intent("bt-2", 9_000)) == 12_000


def test_a_report_is_heard_when_the_live_inspector_heard_its_twins() -> None:
    """The k-th fill of our order when the live inspector heard its twin's k-th, its end when it
    heard the twin's end (its journal); an acknowledgement, a fill more than live had, or an
    order without a twin: None (the report latency)."""
    twins = _twins()
    live = entry_order_id("live-1")
    journal = [
        jr.JournalEntry(now_ns=4_200, fill=jr.JournalFill(venue="sim", fill=tf.Fill(client_order_id=live))),
        jr.JournalEntry(
            now_ns=4_300, order_update=tf.Order(client_order_id=live, status=tf.ORDER_STATUS_OPEN)
        ),
        jr.JournalEntry(now_ns=4_500, fill=jr.JournalFill(venue="sim", fill=tf.Fill(client_order_id=live))),
        jr.JournalEntry(
            now_ns=4_600, order_update=tf.Order(client_order_id=live, status=tf.ORDER_STATUS_FILLED)
        ),
    ]
    twins.hearing = live_hearing(journal)
    twins.intent(am.Intent(intent_id="bt-1", strategy_id="trend", symbol=SYMBOL, ts_signal_ns=1_000))
    entry = _place("e1", OrderRole.ENTRY, "bt-1")
    twins.place(entry, 1_000)
    first = _filled(entry, "0.4", 4_100)
    assert [twins.heard_at(first), twins.heard_at(first)] == [4_200, 4_500]  # its first fill, its second
    assert twins.heard_at(first) is None  # a third fill: live had two
    ended = Execution(4_150, replace(first.order, status=OrderStatus.FILLED), None)
    assert twins.heard_at(ended) == 4_600
    assert twins.heard_at(Execution(4_010, replace(first.order, status=OrderStatus.OPEN), None)) is None
    lone = _place("lone", OrderRole.FLATTEN)
    twins.place(lone, 6_000)
    assert twins.heard_at(_filled(lone, "1", 6_030)) is None


def test_a_key_that_came_twice_live_pairs_the_backtests_second_order_with_the_second() -> None:
    """The sim trims a reduce-only order to the position left, so two stops planned live on
    positions heard at different times can be held at the same size: the same key twice. The
    backtest's second stop of that key is paired with the second live one, not left unpaired."""
    session = [
        _live(entry_order_id("live-1"), 4_000),
        _stop("s-first", "0.4", 4_100, cancel=4_200),
        _stop("s-again", "0.4", 4_300),
    ]
    intents = live_intents([_decision("live-1", SIGNAL)])
    twins = TwinArrivals(live_twins(session, intents), 20, repeats=live_repeats(session, intents))
    assert {k: [o.request.client_order_id for o in v] for k, v in twins.repeats.items()} == {
        (SIGNAL, "stop_loss", D("0.4")): ["s-again"]
    }
    twins.intent(am.Intent(intent_id="bt-1", strategy_id="trend", symbol=SYMBOL, ts_signal_ns=1_000))
    twins.place(_place("e1", OrderRole.ENTRY, "bt-1"), 1_000)
    assert twins.place(_place("sl1", OrderRole.STOP_LOSS, size="0.4"), 4_050) == 4_100
    assert twins.place(_place("sl2", OrderRole.STOP_LOSS, size="0.4"), 4_150) == 4_300
    assert twins.place(_place("sl3", OrderRole.STOP_LOSS, size="0.4"), 4_400) == 4_420  # none left
    assert (twins.paired, twins.unpaired) == (3, 1)


def _reduce_only_stop(cid: str, size: str) -> OrderRequest:
    return OrderRequest(
        SYMBOL, Side.SELL, OrderType.STOP_MARKET, D(size), None, TimeInForce.GTC, reduce_only=True,
        client_order_id=cid, trigger_price=D(90),
    )  # fmt: skip


def test_the_replayed_venue_tells_the_size_a_reduce_only_order_arriving_later_would_be_held_at() -> None:
    """The sim trims a reduce-only order to what the position leaves after the others of its kind
    open when it arrives: the stop open now counts until its cancel arrives, a stop on its way
    from its arrival; a target is not a stop and counts apart."""
    market = ReplayedMarket("sim", [BTC], FEES, BALANCES, Latency(order_ns=20))
    market.on_market(snapshot(10, [("99", "5")], [("100", "5")]))
    buy = OrderRequest(SYMBOL, Side.BUY, OrderType.LIMIT, D(1), D(100), TimeInForce.IOC, client_order_id="e")
    market.submit(buy, 10)
    market.submit(_reduce_only_stop("old", "0.4"), 10)
    market.advance(40)  # the entry filled (a position of 1), the old stop open for 0.4
    market.cancel("old", 40, 100)
    market.submit(_reduce_only_stop("on-its-way", "0.3"), 40, 200)
    new = _reduce_only_stop("new", "1")
    assert market.held_at(new, 50) == D("0.6")  # the old stop still open
    assert market.held_at(new, 100) == D(1)  # its cancel arrived first
    assert market.held_at(new, 200) == D("0.7")  # the one on its way arrived too
    target = replace(new, type=OrderType.LIMIT, price=D(110), trigger_price=None)
    assert market.held_at(target, 50) == D(1)
    assert market.held_at(replace(new, side=Side.BUY), 50) == D(0)  # it would increase it: refused


def test_a_protective_order_without_a_twin_of_its_size_is_paired_by_the_size_held_at_a_twins_arrival() -> (
    None
):
    """A stop planned for the whole position while the old stop's cancel is on its way: the sim
    held it live at what the old one left (0.6 of 1), and the twin was recorded so. The backtest's
    stop, asked for 1, takes the twin whose arrival the venue would hold it at 0.6 then, and no
    twin when the venue would hold it at its size."""
    session = [
        _live(entry_order_id("live-1"), 4_000),
        _stop("s-old", "0.4", 4_100, cancel=5_200),
        _stop("s-trimmed", "0.6", 5_100),
    ]
    intents = live_intents([_decision("live-1", SIGNAL)])
    for old_open_until, paired in ((5_200, True), (5_050, False)):
        twins = TwinArrivals(live_twins(session, intents), 20)
        twins.intent(am.Intent(intent_id="bt-1", strategy_id="trend", symbol=SYMBOL, ts_signal_ns=1_000))
        twins.place(_place("e1", OrderRole.ENTRY, "bt-1"), 1_000)
        assert twins.place(_place("sl-old", OrderRole.STOP_LOSS, size="0.4"), 4_050) == 4_100

        def held_at(at: int, until: int = old_open_until) -> Decimal:
            return D("0.6") if at < until else D(1)

        arrival = twins.place(_place("sl-new", OrderRole.STOP_LOSS, size="1"), 5_000, Held(D(1), held_at))
        assert (arrival == 5_100) is paired
        assert twins.twin_of("sl-new") is (session[2] if paired else None)


_TERMINAL = {
    tf.ORDER_STATUS_FILLED,
    tf.ORDER_STATUS_CANCELED,
    tf.ORDER_STATUS_REJECTED,
    tf.ORDER_STATUS_EXPIRED,
}


def _journaled_execution(stage: InspectStage, execution: Execution, now_ns: int) -> None:
    """A venue's execution as the live shell journals it, each entry fed to the stage's core
    (apply_entry): its fill first, then its order update if the core heeds it. InspectStage.execution
    hands the core the same inputs without the entries (issue 62)."""
    message = execution_to_pb(stage.venue, execution)
    if message.HasField("fill"):
        stage._feed(jr.JournalEntry(now_ns=now_ns, fill=jr.JournalFill(venue=stage.venue, fill=message.fill)))
    order = message.order
    order.venue = order.venue or stage.venue
    if stage.core.heeds(order.client_order_id, order.status in _TERMINAL):
        stage._feed(jr.JournalEntry(now_ns=now_ns, order_update=order))


def _journaled_intent(
    stage: InspectStage, message: am.Intent, market: MarketView, now_ns: int
) -> RiskVerdict:
    """An intent as the live shell journals it, its entry fed to the stage's core (apply_entry):
    its market's prices as text. InspectStage.intent hands the core the same inputs without the
    entry (issue 62)."""
    if market.last is None and message.entry_price:
        market = MarketView(market.bid, market.ask, Decimal(message.entry_price))
    journaled = jr.JournalIntent(intent=message)
    market_to_pb(market, journaled)
    verdict = stage._feed(jr.JournalEntry(now_ns=now_ns, intent=journaled))
    assert isinstance(verdict, RiskVerdict)
    return verdict


def _journaled_timer(stage: InspectStage, now_ns: int) -> None:
    """The core's wake-up as the live shell journals it (InspectStage.timer: without the entry)."""
    due = stage.core.wake_ns
    stage._feed(jr.JournalEntry(now_ns=now_ns, timer=jr.JournalTimer(due_ns=now_ns if due is None else due)))


def _core_state(stage: InspectStage) -> tuple[Any, ...]:
    """The core's positions, working orders and wake-up, as their reprs (a decimal's exponent
    shows)."""
    book = stage.core.book
    return repr(book.positions.positions), [repr(w) for w in book.orders], stage.wake_ns, stage.entries


def test_a_venues_execution_moves_the_core_as_its_journal_entries_would() -> None:
    """InspectStage.intent, execution and timer hand the core the intent, the fill, the order
    update and the wake-up directly (no journal entry made and read back: issue 62), their
    decimals as the entries carry them: the core's state, its verdict and the orders it sends
    are those of the journal's path, trailing zeros included."""
    states, sends = [], []
    for direct in (True, False):
        sent: list[tuple[str, int, int | None]] = []
        stage = _stage(TwinArrivals({}, 20), sent)
        asked = _intent("i-1", 1_000)
        asked.size = "1"
        market = MarketView(D("99.0"), D("100.00"), None)  # trailing zeros the wire drops; no last
        asked.entry_price = "100.0"
        intent = stage.intent if direct else partial(_journaled_intent, stage)
        verdict = intent(asked, market, 1_000)
        marked = repr(stage.core.book.marks)  # the intent's market values the position
        entry = verdict.orders[0]
        filled = _filled(entry, "0.40", 4_050)  # a trailing zero the wire drops
        fill = filled.fill
        assert fill is not None
        filled = replace(filled, fill=replace(fill, price=D("100.00"), fee=D("0.010")))
        updated = replace(_filled(entry, "1.0", 4_080), fill=None)
        for execution, at in ((filled, 4_070), (updated, 250_004_090)):
            if direct:
                stage.execution(execution, at)
            else:
                _journaled_execution(stage, execution, at)
            if at == 4_070:
                (stage.timer if direct else partial(_journaled_timer, stage))(4_070 + 250_000_000)
        states.append((repr(verdict), marked, *_core_state(stage)))
        sends.append(sent)
    assert states[0] == states[1]
    assert sends[0] == sends[1] and len(sends[0]) == 3  # the entry, its stop and take-profit


def test_the_live_plan_is_the_journal_replayed_through_the_core_each_order_with_the_size_asked() -> None:
    """A journal (the inspector's inputs, as an InspectStage feeds its core) replayed: its
    entry, then the pair for its first fill, placed when the core's coalescing window ended (its
    timer entry; the entry was still filling), and an update without a fill plans nothing."""
    journal: list[jr.JournalEntry] = []
    stage = _stage(TwinArrivals({}, 20), [])
    journal.append(stage.core_entry)
    feed = stage._feed

    def journaled(entry: jr.JournalEntry) -> RiskOutput | RiskVerdict:
        journal.append(entry)
        return feed(entry)

    stage._feed = journaled  # type: ignore[method-assign]
    asked = _intent("i-1", 1_000)
    asked.size = "1"  # ten lots: its first fill is whole lots (under a lot is dust, never protected)
    verdict = _journaled_intent(stage, asked, MarketView(D(99), D(100), D(100)), 1_000)
    entry = verdict.orders[0]
    _journaled_execution(stage, _filled(entry, "0.4", 4_050), 4_070)
    assert stage.wake_ns == 4_070 + 250_000_000  # protect.coalesce_ms
    _journaled_timer(stage, 4_070 + 250_000_000)
    assert journal[-1].WhichOneof("input") == "timer"
    update = replace(_filled(entry, "1", 4_080), fill=None)
    _journaled_execution(stage, update, 250_004_090)  # an update: no re-plan
    plan = live_plan(journal)
    assert [(p.place[1], p.size) for p in plan.values()] == [(0, D("1")), (1, D("0.4")), (2, D("0.4"))]
    assert {p.place[0] for p in plan.values()} == {0}  # the journal's start
    assert live_plan(journal[1:]) == {}  # no start: not replayed


def test_with_the_live_plan_orders_are_keyed_in_the_order_planned_by_the_size_asked() -> None:
    """Live, a take-profit planned for the first signal's position reached the venue after the
    next signal's entry (the shell carries out inputs side by side), held at the next position's
    size. Keyed by arrival it was the next signal's; by the plan, the first's, at the size asked,
    as the backtest's inspector keys its own (and its order asked 0.5 finds it, not one held)."""
    session = [
        _live(entry_order_id("live-1"), 4_000),
        _target("tp-first", "0.3", 12_200),  # planned before live-2's entry, held at 0.3
        _live(entry_order_id("live-2"), 12_000),
    ]
    intents = live_intents([_decision("live-1", SIGNAL), _decision("live-2", LATER)])
    by_arrival = live_twins(session, intents)
    assert (LATER, "take_profit", D("0.3")) in by_arrival
    plan = {
        entry_order_id("live-1"): PlannedOrder((0, 0), D(1)),
        "tp-first": PlannedOrder((0, 1), D("0.5")),
        entry_order_id("live-2"): PlannedOrder((0, 2), D(1)),
    }
    twins = TwinArrivals(live_twins(session, intents, plan), 20, by_plan=True)
    assert set(twins.twins) == {
        (SIGNAL, "intent", D(0)),
        (SIGNAL, "take_profit", D("0.5")),
        (LATER, "intent", D(0)),
    }
    twins.intent(am.Intent(intent_id="bt-1", strategy_id="trend", symbol=SYMBOL, ts_signal_ns=1_000))
    twins.place(_place("e1", OrderRole.ENTRY, "bt-1"), 1_000)
    assert twins.place(_place("tp", OrderRole.TAKE_PROFIT, size="0.5"), 11_000, Held(D("0.3"))) == 12_200


def test_the_venues_answer_is_heard_when_the_live_inspector_heard_its_twins() -> None:
    """The live shell journals every PlaceOrder answer: an order's first update in the journal is
    the venue's first word on it (here FILLED, its fills heard after). Our order at that twin
    hears its answer then; one without a twin, or a twin with no update heard, hears none."""
    twins = _twins()
    live = entry_order_id("live-1")
    fill = jr.JournalFill(venue="sim", fill=tf.Fill(client_order_id=live))
    filled = tf.Order(client_order_id=live, status=tf.ORDER_STATUS_FILLED)
    twins.hearing = live_hearing(
        [
            jr.JournalEntry(now_ns=4_010, order_update=filled),  # its PlaceOrder answer
            jr.JournalEntry(now_ns=4_200, fill=fill),
            jr.JournalEntry(now_ns=4_300, order_update=filled),  # the stream's, after its fill
        ]
    )
    assert twins.hearing.answers == {live: 4_010}
    assert twins.hearing.ends == {live: 4_010}
    twins.intent(am.Intent(intent_id="bt-1", strategy_id="trend", symbol=SYMBOL, ts_signal_ns=1_000))
    twins.place(_place("e1", OrderRole.ENTRY, "bt-1"), 1_000)
    assert twins.answered_at("e1") == 4_010
    twins.place(_place("lone", OrderRole.FLATTEN), 6_000)
    assert twins.answered_at("lone") is None
    assert ModelTiming().answered_at("e1") is None


def test_the_replayed_venue_answers_a_placement_apart_from_its_reports() -> None:
    """A marketable order's answer (the order as placed: filled on arrival) reaches us when the
    answer hook says, ahead of its fills' reports, heard later (live: the PlaceOrder answer came
    first, the execution stream's fills 200 ms after). Without the hook there is no answer."""
    market = ReplayedMarket("sim", [BTC], FEES, BALANCES, Latency())
    market.on_market(snapshot(10, [("99", "1")], [("100", "1")]))
    market.hear(lambda execution: 500)
    market.answer(lambda cid: 30 if cid == "answered" else None)
    ask = OrderRequest(SYMBOL, Side.BUY, OrderType.LIMIT, D("0.5"), D(100), TimeInForce.GTC)
    market.submit(replace(ask, client_order_id="answered"), 0, 20)
    market.submit(replace(ask, client_order_id="unanswered", size=D("0.1")), 0, 20)
    assert market.next_due_ns() == 20
    assert market.advance(20) == []
    assert market.next_due_ns() == 30
    [(at, (order, amended_from))] = market.answers_due(30)
    assert amended_from == ""
    assert (at, order.client_order_id, order.status, order.filled_size) == (
        30, "answered", OrderStatus.FILLED, D("0.5"),
    )  # fmt: skip
    assert market.advance(30) == [] and market.answers_due(499) == []
    assert market.next_due_ns() == 500
    assert {e.order.client_order_id for _, e in market.advance(500)} == {"answered", "unanswered"}


def test_an_entry_answered_filled_is_protected_on_the_answer_before_its_fills_are_heard() -> None:
    """As the live core protects on the venue's word: the backtest's inspector, handed the answer
    when the live one heard its twin's, places the pair then, not when the fills are heard
    (live, an entry's fills came 200 ms after its answer, its stop in the market meanwhile
    caught a sweep the backtest's, placed on the fills, missed)."""
    twins, sent = _twins(), list[tuple[str, int, int | None]]()
    stage = _stage(twins, sent)
    intent = _intent("bt-1", 1_000)
    twins.intent(intent)
    entry = stage.intent(intent, MarketView(D(99), D(100), D(100)), 1_000).orders[0]
    answered = replace(_filled(entry, "0.1", 4_000).order, status=OrderStatus.FILLED)
    stage.answer(answered, 4_010)
    protective = [(cid, now) for cid, now, _ in sent if cid != entry.client_order_id]
    assert len(protective) == 2 and {now for _, now in protective} == {4_010}
