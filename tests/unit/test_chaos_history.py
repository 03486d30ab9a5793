"""The chaos run's reading of a venue's history (tests/chaos_history.py), on histories made by
hand: what is a window, what counts of it, and what is the venue's doing."""

from __future__ import annotations

import itertools
from decimal import Decimal

from tests.chaos_history import Absence, Minimum, entries, history, states
from trademesh.common.v1 import common_pb2 as common
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf

S = 1_000_000_000
MS = 1_000_000
BOUND = S
BTC = "BTC/USDT"
MINIMUMS = {BTC: Minimum(Decimal("0.00001"), Decimal("5"))}
BUY, SELL = common.SIDE_BUY, common.SIDE_SELL
OPEN, FILLED, CANCELED = tf.ORDER_STATUS_OPEN, tf.ORDER_STATUS_FILLED, tf.ORDER_STATUS_CANCELED
_fills = itertools.count(1)


class Venue:
    """A venue's history written by hand: orders in, executions out, in sequence."""

    def __init__(self) -> None:
        self.executions: list[tf.Execution] = []
        self.orders: dict[str, tf.Order] = {}

    def _emit(self, order: tf.Order, at_s: float, fill: tf.Fill | None = None) -> None:
        execution = tf.Execution(venue="sim", ts_event_ns=int(at_s * S), sequence=len(self.executions) + 1)
        execution.order.CopyFrom(order)
        if fill is not None:
            execution.fill.CopyFrom(fill)
        self.executions.append(execution)

    def entry(
        self,
        order_id: str,
        side: common.Side.ValueType,
        size: str,
        at_s: float,
        client: str = "",
        price: str = "65000",
    ) -> None:
        """A market entry that fills whole at once."""
        order = tf.Order(
            order_id=order_id, client_order_id=client or f"c-{order_id}", symbol=BTC, side=side,
            type=tf.ORDER_TYPE_MARKET, size=size, status=OPEN,
        )  # fmt: skip
        self._emit(order, at_s)
        self.fill(order, size, at_s, price)

    def fill(self, order: tf.Order, size: str, at_s: float, price: str = "65000") -> None:
        order.filled_size = str(Decimal(order.filled_size or "0") + Decimal(size))
        order.status = (
            FILLED if Decimal(order.filled_size) == Decimal(order.size) else tf.ORDER_STATUS_PARTIALLY_FILLED
        )
        fill = tf.Fill(
            fill_id=str(next(_fills)),
            order_id=order.order_id,
            symbol=BTC,
            side=order.side,
            price=price,
            size=size,
        )
        self._emit(order, at_s, fill)

    def protect(
        self, order_id: str, side: common.Side.ValueType, size: str, at_s: float, stop: bool = True
    ) -> tf.Order:
        kind = tf.ORDER_TYPE_STOP_MARKET if stop else tf.ORDER_TYPE_LIMIT
        order = tf.Order(
            order_id=order_id, client_order_id=f"c-{order_id}", symbol=BTC, side=side, type=kind,
            size=size, reduce_only=True, status=OPEN,
        )  # fmt: skip
        self.orders[order_id] = order
        self._emit(order, at_s)
        return order

    def pair(self, n: int, side: common.Side.ValueType, size: str, at_s: float) -> None:
        self.protect(f"sl{n}", side, size, at_s)
        self.protect(f"tp{n}", side, size, at_s, stop=False)

    def cancel(self, order_id: str, at_s: float, reason: str = "canceled by request") -> None:
        order = self.orders[order_id]
        order.status = CANCELED
        order.status_reason = reason
        self._emit(order, at_s)


def windows(venue: Venue, absences: list[Absence] | None = None, end_s: float = 100, kind: str = "pair"):  # type: ignore[no-untyped-def]
    found = history(venue.executions, MINIMUMS, absences or [], int(end_s * S))
    return {"pair": found.pair, "stop": found.stop, "dust": found.dust}[kind]


def test_a_pair_placed_soon_after_the_entry_fill_is_a_short_window_within_the_bound() -> None:
    venue = Venue()
    venue.entry("1", BUY, "0.1", at_s=10)
    venue.pair(1, SELL, "0.1", at_s=10.3)
    (window,) = windows(venue)
    assert (window.start_ns, window.end_ns, window.cause) == (10 * S, int(10.3 * S), "fill")
    assert window.counted_ns == 300 * MS and not window.stripped
    assert history(venue.executions, MINIMUMS, [], 100 * S).violations(BOUND) == []


def test_a_position_left_naked_for_13_4_s_is_a_violation() -> None:
    """Issue 37's defect 2: an entry with neither stop nor target for 13.4 s, no one away."""
    venue = Venue()
    venue.entry("1", BUY, "0.12448", at_s=20)
    venue.pair(1, SELL, "0.12448", at_s=33.4)
    found = history(venue.executions, MINIMUMS, [], 100 * S)
    (window,) = found.violations(BOUND)
    assert window.counted_ns == 13_400 * MS and window.cause == "fill"
    assert window.largest == Decimal("0.12448")


def test_protection_cancelled_while_the_inspector_is_frozen_counts_whole() -> None:
    """Issue 37's defect 3: the dead-man trips during a freeze and cancels the pair; the window
    runs from the trip to the pair placed again after SIGCONT, and none of it is excused."""
    venue = Venue()
    venue.entry("1", BUY, "0.1", at_s=1)
    venue.pair(1, SELL, "0.1", at_s=1.2)
    venue.cancel("sl1", at_s=17)
    venue.cancel("tp1", at_s=17)
    venue.pair(2, SELL, "0.1", at_s=25.5)
    freeze = Absence(10 * S, 24 * S, "freeze")
    found = history(venue.executions, MINIMUMS, [freeze], 100 * S)
    stripped = [w for w in found.pair if w.stripped]
    assert [(w.start_ns, w.end_ns, w.counted_ns, w.cause) for w in stripped] == [
        (17 * S, int(25.5 * S), int(8.5 * S), "removal")
    ]
    assert stripped[0] in found.violations(BOUND)
    assert [w.stripped for w in found.stop] == [False, True]


def test_time_the_inspector_was_away_after_the_fill_is_not_counted() -> None:
    """Killed 0.1 s after the entry filled, serving again at 5 s, the pair placed 0.4 s later:
    0.5 s counted."""
    venue = Venue()
    venue.entry("1", BUY, "0.1", at_s=0)
    venue.pair(1, SELL, "0.1", at_s=5.4)
    (window,) = windows(venue, [Absence(100 * MS, 5 * S, "kill")])
    assert window.counted_ns == 500 * MS and not window.stripped


def test_a_cancel_the_inspector_sent_before_it_was_killed_is_its_own() -> None:
    """A re-plan's cancel lands 0.2 s into the absence (in flight): the inspector's doing, the
    time it was away excused (0.3 s counted, after it is back); a cancel 1 s or more into it is
    the venue's, and counts whole."""
    venue = Venue()
    venue.entry("1", BUY, "0.1", at_s=0)
    venue.pair(1, SELL, "0.1", at_s=0.1)
    venue.cancel("sl1", at_s=10.2)
    venue.protect("sl2", SELL, "0.1", at_s=15.3)
    venue.cancel("tp1", at_s=31.5)
    venue.protect("tp2", SELL, "0.1", at_s=36.0, stop=False)
    kills = [Absence(10 * S, 15 * S, "kill"), Absence(30 * S, 35 * S, "kill")]
    first, second, third = windows(venue, kills)
    assert (first.counted_ns, first.stripped) == (100 * MS, False)
    assert (second.counted_ns, second.stripped) == (300 * MS, False)
    assert (third.counted_ns, third.stripped) == (int(4.5 * S), True)


def test_a_stop_that_covers_part_of_the_position_leaves_it_unprotected() -> None:
    venue = Venue()
    venue.entry("1", BUY, "0.1", at_s=0)
    venue.pair(1, SELL, "0.1", at_s=0.1)
    venue.entry("2", BUY, "0.1", at_s=5)  # the position grows to 0.2; the pair still covers 0.1
    venue.cancel("sl1", at_s=7)
    venue.cancel("tp1", at_s=7)
    venue.pair(2, SELL, "0.2", at_s=7.1)
    assert [(w.start_ns, w.end_ns, w.cause) for w in windows(venue)] == [
        (0, 100 * MS, "fill"),
        (5 * S, int(7.1 * S), "fill"),
    ]


def test_a_stop_without_its_target_is_protected_but_not_paired() -> None:
    venue = Venue()
    venue.entry("1", BUY, "0.1", at_s=0)
    venue.protect("sl1", SELL, "0.1", at_s=0.2)
    venue.protect("tp1", SELL, "0.1", at_s=3, stop=False)
    assert [(w.start_ns, w.end_ns) for w in windows(venue)] == [(0, 3 * S)]
    assert [(w.start_ns, w.end_ns) for w in windows(venue, kind="stop")] == [(0, 200 * MS)]


def test_the_stop_closing_the_position_leaves_no_window() -> None:
    venue = Venue()
    venue.entry("1", BUY, "0.1", at_s=0)
    venue.pair(1, SELL, "0.1", at_s=0.1)
    stop = venue.orders["sl1"]
    stop.triggered = True
    venue.fill(stop, "0.04", at_s=8)
    venue.fill(stop, "0.06", at_s=8)
    venue.cancel("tp1", at_s=8.5)
    assert [w.end_ns for w in windows(venue)] == [100 * MS]


def test_a_position_too_small_to_protect_is_dust_not_a_window() -> None:
    """0.0001 BTC at 65000 is 6.5 USDT: under twice the 5 USDT minimum notional."""
    venue = Venue()
    venue.entry("1", BUY, "0.0001", at_s=0)
    venue.entry("2", BUY, "0.1", at_s=30)
    venue.pair(1, SELL, "0.1001", at_s=30.2)
    assert [(w.start_ns, w.end_ns) for w in windows(venue)] == [(30 * S, int(30.2 * S))]
    assert [(w.start_ns, w.end_ns) for w in windows(venue, kind="dust")] == [(0, 30 * S)]


def test_a_flip_leaves_the_new_side_unprotected_until_its_own_pair() -> None:
    venue = Venue()
    venue.entry("1", BUY, "0.1", at_s=0)
    venue.pair(1, SELL, "0.1", at_s=0.1)
    venue.entry("2", SELL, "0.3", at_s=4)  # short 0.2: the sell stop and target cover nothing
    venue.pair(2, BUY, "0.2", at_s=4.5)
    assert [(w.start_ns, w.end_ns, w.cause) for w in windows(venue)][1:] == [(4 * S, int(4.5 * S), "fill")]


def test_a_window_still_open_when_the_run_ends_is_cut_there() -> None:
    venue = Venue()
    venue.entry("1", BUY, "0.1", at_s=90)
    (window,) = windows(venue, end_s=95)
    assert (window.end_ns, window.counted_ns, window.open_at_end) == (95 * S, 5 * S, True)


def test_an_intent_whose_entry_was_placed_twice_is_found() -> None:
    venue = Venue()
    venue.entry("1", BUY, "0.1", at_s=0, client="order-a")
    venue.entry("2", BUY, "0.1", at_s=5, client="order-a")  # the same client order id again
    venue.entry("3", BUY, "0.1", at_s=6, client="order-b")
    venue.entry("4", BUY, "0.1", at_s=7, client="nobody")
    venue.entry("5", BUY, "0.1", at_s=8, client="probe")
    venue.protect("sl1", SELL, "0.4", at_s=9)  # reduce-only: not an entry
    found = entries(venue.executions, {"order-a": "intent-a", "order-b": "intent-b"}, ignored=["probe"])
    assert found.doubles == {"intent-a": ["1", "2"]}
    assert found.by_intent["intent-b"] == ["3"]
    assert found.unattributed == ["4"]


def test_the_state_now_of_each_symbols_position() -> None:
    venue = Venue()
    venue.entry("1", BUY, "0.1", at_s=0)
    assert states(venue.executions, MINIMUMS) == {BTC: "unprotected"}
    venue.pair(1, SELL, "0.1", at_s=0.1)
    assert states(venue.executions, MINIMUMS) == {BTC: "protected"}
    venue.entry("2", SELL, "0.0999", at_s=1)  # 0.0001 left: 6.5 USDT
    assert states(venue.executions, MINIMUMS) == {BTC: "dust"}
    venue.entry("3", SELL, "0.0001", at_s=2)
    assert states(venue.executions, MINIMUMS) == {BTC: "flat"}


def test_the_inspectors_own_cancel_during_an_absence_is_not_the_venue_stripping_it() -> None:
    """A CI run: the inspector, restarted, amended a stop (cancel, then the new one 7.8 ms
    later) after its journal's replay and before its serving line, where its absence ended. Its
    own cancel (the venue's `status_reason` says "inspector: ...") is not stripped protection;
    the window counts whole (it was back), well within the bound."""
    venue = Venue()
    venue.entry("1", BUY, "0.04", at_s=0)
    venue.pair(1, SELL, "0.04", at_s=0.1)
    venue.cancel("sl1", at_s=34.0, reason="inspector: stop_loss amended")
    venue.protect("sl2", SELL, "0.04", at_s=34.0078)
    _, window = windows(venue, [Absence(500 * MS, 34 * S + 50 * MS, "kill")])
    assert (window.cause, window.stripped) == ("inspector's removal", False)
    assert window.counted_ns == 7_800_000 and window.counted_ns < BOUND
