"""The live twins a backtest's orders are sent at (`latency = "recorded"`), read back by
`load_twin_arrivals` from decisions and executions the real recorder wrote: each intent's order
by its signal, each protective order by its role and the position it protects, every order at
its venue's `created_ns` and its cancel at the CANCELED update's time; hypothetical decisions,
other venues', the range's outside (past the late margin) and orders neither an intent's nor
protective (a flatten) are left out. Then the backtest's own orders sent at those times."""

from __future__ import annotations

import time
from dataclasses import replace
from decimal import Decimal

import asyncpg
import pytest

from tests.integration.postgres_server import database_url, recorder_database
from tests.integration.recorder_support import recorder
from trademesh.advisor.v1 import messages_pb2 as am
from trademesh.bus.v1 import bus_pb2 as bus
from trademesh.core.advisor.wire import encode_decisions
from trademesh.core.backtest import twins as twins_module
from trademesh.core.backtest.twins import LiveHearing, TwinArrivals, load_twin_arrivals
from trademesh.core.domain.convert import execution_to_pb
from trademesh.core.domain.model import (
    Execution,
    Fill,
    Liquidity,
    Order,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
)
from trademesh.core.inspector.engine.actions import OrderRole, PlaceOrder
from trademesh.core.inspector.engine.ids import entry_order_id, flatten_order_id, protective_order_id
from trademesh.core.platform.bus.codec import FIELD, decode, decode_entry
from trademesh.core.platform.bus.names import journal_stream
from trademesh.core.recorder.app import Recorder
from trademesh.risk.v1 import journal_pb2 as jr

pytestmark = pytest.mark.integration
__all__ = ["database_url", "recorder", "recorder_database"]  # the fixtures, for pytest

D = Decimal
S = 1_000_000_000
MS = 1_000_000
START = (time.time_ns() // S - 3600) * S  # an hour ago: inside the recorder's partitions
END = START + 60 * S  # the backtest's range; live orders are read to 120 s past it
SYMBOL = "BTC/USDT"
ORDER_NS = 20 * MS  # the latency model's order latency
FIRST = ("trend", SYMBOL, START + 1 * S)  # the signals of the live intents (strategy, symbol, ns)
SECOND = ("trend", SYMBOL, START + 20 * S)
LATE = ("trend", SYMBOL, START + 50 * S)  # its order reached the venue after the range's end


def decision(
    intent_id: str, signal: tuple[str, str, int], venue: str = "sim", hypothetical: bool = False
) -> am.Decision:
    strategy, symbol, ts_signal_ns = signal
    intent = am.Intent(
        intent_id=intent_id, decision_id=f"d-{intent_id}", signal_id=f"s-{intent_id}", venue=venue,
        symbol=symbol, strategy_id=strategy, ts_signal_ns=ts_signal_ns, ts_intent_ns=ts_signal_ns + S // 4,
    )  # fmt: skip
    return am.Decision(
        decision_id=f"d-{intent_id}", signal_id=f"s-{intent_id}", venue=venue, symbol=symbol,
        strategy_id=strategy, outcome=am.OUTCOME_INTENT, ts_decision_ns=ts_signal_ns + S // 4, intent=intent,
        hypothetical=hypothetical,
    )  # fmt: skip


def order(
    cid: str,
    at_ns: int,
    kind: OrderType = OrderType.LIMIT,
    size: str = "0.4",
    venue: str = "sim",
    **fields: object,
) -> Order:
    """A live order as the venue reported it at its arrival (`created_ns`)."""
    values: dict[str, object] = {
        "side": Side.BUY, "price": D("65000"), "time_in_force": TimeInForce.GTC, **fields,
    }  # fmt: skip
    return Order(
        venue, f"o-{cid}", cid, SYMBOL, type=kind, size=D(size), created_ns=at_ns, updated_ns=at_ns,
        **values,  # type: ignore[arg-type]
    )  # fmt: skip


def stop(cid: str, at_ns: int, size: str) -> Order:
    """A native stop-loss as the live inspector places it: a reduce-only stop-market, IOC."""
    return order(
        cid, at_ns, OrderType.STOP_MARKET, size, side=Side.SELL, price=None, reduce_only=True,
        time_in_force=TimeInForce.IOC, trigger_price=D("64000"),
    )  # fmt: skip


def target(cid: str, at_ns: int, size: str) -> Order:
    return order(cid, at_ns, size=size, side=Side.SELL, price=D("66000"), reduce_only=True)


def updated(placed: Order, at_ns: int, status: OrderStatus, filled: str = "0") -> Order:
    return Order(
        placed.venue, placed.order_id, placed.client_order_id, placed.symbol, placed.side, placed.type,
        placed.time_in_force, placed.price, placed.size, reduce_only=placed.reduce_only,
        filled_size=D(filled), status=status, created_ns=placed.created_ns, updated_ns=at_ns,
        trigger_price=placed.trigger_price,
    )  # fmt: skip


def fill(placed: Order, at_ns: int, size: str) -> Fill:
    return Fill(
        f"f-{placed.order_id}-{at_ns}", placed.order_id, placed.client_order_id, SYMBOL, placed.side,
        D("65000"), D(size), D("0.01"), "USDT", Liquidity.MAKER, f"t-{at_ns}", at_ns,
    )  # fmt: skip


def executions(venue: str, changes: list[Execution]) -> tuple[str, bus.Envelope]:
    """One bus entry of a venue's executions, as ingest publishes them (epoch 1)."""
    batch = bus.Executions(venue=venue, epoch=1, position=len(changes))
    for sequence, change in enumerate(changes, 1):
        message = execution_to_pb(venue, change)
        message.sequence = sequence
        batch.executions.append(message)
    envelope = bus.Envelope(source="ingest", ts_publish_ns=time.time_ns(), executions=batch)
    return f"{len(changes)}-0", envelope


ENTRY = order(entry_order_id("live-1"), START + 4 * S)
STOP = stop(protective_order_id("sim", SYMBOL, "stop_loss", 1), START + 4 * S + 100 * MS, "0.40")
TARGET = target(protective_order_id("sim", SYMBOL, "take_profit", 1), START + 4 * S + 100 * MS, "0.4")
SECOND_ENTRY = order(entry_order_id("live-2"), START + 22 * S, size="1")
SECOND_STOP = stop(protective_order_id("sim", SYMBOL, "stop_loss", 2), START + 23 * S, "1")
LATE_ENTRY = order(entry_order_id("live-late"), END + 40 * S)


async def record_session(recorder: Recorder) -> None:
    """A live session's decisions and the sim's executions of its orders, through the recorder."""
    made = [
        decision("live-1", FIRST),
        decision("live-2", SECOND),
        decision("live-late", LATE),
        decision("hypothetical", ("trend", SYMBOL, START + 2 * S), hypothetical=True),  # a Decide
        decision("other-venue", ("trend", SYMBOL, START + 3 * S), venue="binance"),
        decision("before", ("trend", SYMBOL, START - 10 * S)),  # before the range
        decision("too-late", ("trend", SYMBOL, END + 125 * S)),  # past the late margin
        decision("slow", ("trend", SYMBOL, START + 55 * S)),  # its order past the late margin
    ]
    await recorder.handle(
        "decisions", [("1-0", decode({FIELD: encode_decisions("advisor", made, time.time_ns())}))]
    )
    sim = [
        Execution(ENTRY.created_ns, ENTRY),
        Execution(
            START + 5 * S,
            updated(ENTRY, START + 5 * S, OrderStatus.PARTIALLY_FILLED, "0.1"),
            fill(ENTRY, START + 5 * S, "0.1"),
        ),
        Execution(STOP.created_ns, STOP),
        Execution(TARGET.created_ns, TARGET),
        Execution(START + 7 * S, updated(STOP, START + 7 * S, OrderStatus.CANCELED)),
        # Neither an intent's nor protective: a flatten (a market order without a trigger).
        Execution(
            START + 8 * S,
            order(
                flatten_order_id("sim", SYMBOL, 1),
                START + 8 * S,
                OrderType.MARKET,
                side=Side.SELL,
                price=None,
                reduce_only=True,
            ),
        ),
        # The entry of the hypothetical decision (a Decide never orders; one here is not a twin).
        Execution(START + 9 * S, order(entry_order_id("hypothetical"), START + 9 * S)),
        Execution(SECOND_ENTRY.created_ns, SECOND_ENTRY),
        Execution(SECOND_STOP.created_ns, SECOND_STOP),
        Execution(
            START + 25 * S,
            updated(SECOND_STOP, START + 25 * S, OrderStatus.FILLED, "1"),
            fill(SECOND_STOP, START + 25 * S, "1"),
        ),
        Execution(START + 30 * S, updated(SECOND_ENTRY, START + 30 * S, OrderStatus.CANCELED)),
        Execution(LATE_ENTRY.created_ns, LATE_ENTRY),
        # Orders of decisions left out (each found only if its decision were read).
        Execution(START + 10 * S, order(entry_order_id("before"), START + 10 * S)),
        Execution(START + 11 * S, order(entry_order_id("other-venue"), START + 11 * S)),
        Execution(END + 100 * S, order(entry_order_id("too-late"), END + 100 * S)),
        Execution(END + 121 * S, order(entry_order_id("slow"), END + 121 * S)),
    ]
    # Another venue's stop for the same position, before the sim's (taken first if read).
    other = [Execution(START + 4 * S + 50 * MS, replace(STOP, venue="binance", order_id="b-1"))]
    await recorder.handle("exec.{sim}", [executions("sim", sim)])
    await recorder.handle("exec.{binance}", [executions("binance", other)])
    # The live inspector's journal: when it heard those executions (a while after the venue's).
    heard = [
        (START + 5 * S + 150 * MS, sim[1]),
        (START + 25 * S + 400 * MS, sim[9]),
        (START + 4 * S + 90 * MS, other[0]),  # another venue's: not heard for the sim's orders
    ]
    stream = journal_stream("main")
    await recorder.handle(
        stream,
        [
            (f"{n}-0", decode_entry(stream, {FIELD: e.SerializeToString()}))
            for n, e in enumerate(journal(heard), 1)
        ],
    )


def journal(heard: list[tuple[int, Execution]]) -> list[jr.JournalEntry]:
    """The inspector's journal entries of executions heard at the times given: the fill first, as
    the live shell takes them, then the order's update."""
    entries = []
    for at, execution in heard:
        message = execution_to_pb(execution.order.venue, execution)
        if message.HasField("fill"):
            entries.append(
                jr.JournalEntry(now_ns=at, fill=jr.JournalFill(venue=message.venue, fill=message.fill))
            )
        entries.append(jr.JournalEntry(now_ns=at, order_update=message.order))
    return entries


async def test_the_live_orders_come_back_paired_with_their_signals_and_arrivals(
    recorder: Recorder, recorder_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    await record_session(recorder)
    # The journal is read through a cursor, a few entries at a time: here two, so its five
    # entries come in three fetches (a day's journal is never held whole).
    monkeypatch.setattr(twins_module, "_PREFETCH", 2)

    twins = await load_twin_arrivals(recorder_database, "sim", START, END, ORDER_NS)

    # Each: its client order id, arrival, cancel and end (None: still working).
    found = {
        key: (o.request.client_order_id, o.arrival_ns, o.cancel_ns, o.ended_ns)
        for key, o in twins.twins.items()
    }
    assert found == {
        (FIRST, "intent", D(0)): (ENTRY.client_order_id, START + 4 * S, None, None),
        (FIRST, "stop_loss", D("0.4")): (STOP.client_order_id, STOP.created_ns, START + 7 * S, START + 7 * S),
        (FIRST, "take_profit", D("0.4")): (TARGET.client_order_id, TARGET.created_ns, None, None),
        (SECOND, "intent", D(0)): (
            SECOND_ENTRY.client_order_id,
            START + 22 * S,
            START + 30 * S,
            START + 30 * S,
        ),
        (SECOND, "stop_loss", D(1)): (
            SECOND_STOP.client_order_id,
            SECOND_STOP.created_ns,
            None,
            START + 25 * S,
        ),
        (LATE, "intent", D(0)): (LATE_ENTRY.client_order_id, LATE_ENTRY.created_ns, None, None),
    }
    # The stop's request as the venue took it, back from NUMERIC columns: exact decimals.
    stop_request = twins.twins[(FIRST, "stop_loss", D("0.4"))].request
    assert (stop_request.type, stop_request.side, stop_request.reduce_only) == (
        OrderType.STOP_MARKET, Side.SELL, True
    )  # fmt: skip
    assert (stop_request.trigger_price, stop_request.size) == (D("64000"), D("0.40"))
    assert twins.order_ns == ORDER_NS
    # When the live inspector heard its orders' executions: the recorder kept its journal.
    assert twins.hearing == LiveHearing(
        fills={
            ENTRY.client_order_id: [START + 5 * S + 150 * MS],
            SECOND_STOP.client_order_id: [START + 25 * S + 400 * MS],
        },
        ends={SECOND_STOP.client_order_id: START + 25 * S + 400 * MS},
        # The venue's first word on each (an update of its execution stream here).
        answers={
            ENTRY.client_order_id: START + 5 * S + 150 * MS,
            SECOND_STOP.client_order_id: START + 25 * S + 400 * MS,
        },
    )


def backtest_order(cid: str, role: OrderRole, size: str, intent_id: str = "") -> PlaceOrder:
    trigger = D("64000") if role is OrderRole.STOP_LOSS else None
    kind = OrderType.MARKET if role is OrderRole.STOP_LOSS else OrderType.LIMIT
    return PlaceOrder(
        cid, "sim", SYMBOL, Side.BUY, kind, D(size), None if trigger else D("65000"), TimeInForce.GTC,
        role.protective, role, intent_id, "trend", trigger,
    )  # fmt: skip


def intent(intent_id: str, signal: tuple[str, str, int]) -> am.Intent:
    strategy, symbol, ts_signal_ns = signal
    return am.Intent(intent_id=intent_id, strategy_id=strategy, symbol=symbol, ts_signal_ns=ts_signal_ns)


async def test_the_backtests_orders_are_sent_at_their_twins_arrivals(
    recorder: Recorder, recorder_database: str
) -> None:
    await record_session(recorder)
    twins: TwinArrivals = await load_twin_arrivals(recorder_database, "sim", START, END, ORDER_NS)

    # The backtest makes the first signal's intent: its entry goes at the live entry's arrival,
    # its stop and target (for the same 0.4) at theirs; a target for another size keeps the model,
    # but goes after the target sent before it (the live shell sends in turn).
    twins.intent(intent("bt-1", FIRST))
    sent_at = START + 1 * S + 300 * MS
    assert twins.place(backtest_order("e1", OrderRole.ENTRY, "0.4", "bt-1"), sent_at) == ENTRY.created_ns
    assert twins.place(backtest_order("sl1", OrderRole.STOP_LOSS, "0.400"), START + 4 * S) == STOP.created_ns
    assert (
        twins.place(backtest_order("tp1", OrderRole.TAKE_PROFIT, "0.4"), START + 4 * S) == TARGET.created_ns
    )
    assert (
        twins.place(backtest_order("tp9", OrderRole.TAKE_PROFIT, "0.3"), START + 4 * S) == TARGET.created_ns
    )
    # Its stop's cancel at the live stop's cancel; the entry, live never cancelled, at once.
    assert twins.cancel("sl1", START + 6 * S) == START + 7 * S
    assert twins.cancel("e1", START + 6 * S) == START + 6 * S
    # The hypothetical decision's signal made no live intent: its entry keeps the model.
    twins.intent(intent("bt-h", ("trend", SYMBOL, START + 2 * S)))
    assert twins.place(backtest_order("eh", OrderRole.ENTRY, "0.4", "bt-h"), START + 8 * S) == (
        START + 8 * S + ORDER_NS
    )
    # The second signal's entry, its cancel at the live one's.
    twins.intent(intent("bt-2", SECOND))
    assert (
        twins.place(backtest_order("e2", OrderRole.ENTRY, "1", "bt-2"), START + 20 * S)
        == SECOND_ENTRY.created_ns
    )
    assert twins.cancel("e2", START + 25 * S) == START + 30 * S
    assert (twins.paired, twins.unpaired) == (4, 2)
    assert twins.twin_of("e2") is twins.twins[(SECOND, "intent", D(0))] and twins.twin_of("eh") is None


async def test_a_database_recorded_before_the_journal_was_kept_pairs_without_hearing(
    recorder: Recorder, recorder_database: str
) -> None:
    """No inspector_journal table (a recorder before it kept the journal): the twins as ever,
    and the reports of the backtest's executions keep the latency model."""
    await record_session(recorder)
    connection = await asyncpg.connect(recorder_database)
    try:
        await connection.execute("DROP TABLE inspector_journal")
    finally:
        await connection.close()
    twins = await load_twin_arrivals(recorder_database, "sim", START, END, ORDER_NS)
    assert twins.hearing is None
    assert twins.twins[(SECOND, "stop_loss", D(1))].request.client_order_id == SECOND_STOP.client_order_id
