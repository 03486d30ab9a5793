"""Issue 37, item 8: what an entry filling in 14 parts costs in protective orders, and the
longest moment the venue holds no stop for the position.

The inspector's engine core (the tree's own, or another tree's with PYTHONPATH: the "before"
figures) in a discrete-event model of its shell and a venue:

- the venue filled the whole entry (a market order through 14 levels); its fills reach the
  inspector on the execution stream `--apart-ms` apart (0: back to back, as one sweep);
- the shell takes them one at a time, each after the venue answered the orders its re-plan
  asked for (trademesh.core.inspector.executor: an input's actions in turn, each after the answer to the
  one before), and the answers go back to the core; the core's timer (`wake_ns`, when it has
  one) is another caller, as the shell's timer task is;
- each venue call takes `--rtt-ms`, the venue acting on it half way.

And the venue's answer first: the entry is a market order the venue fills half way through its
PlaceOrder round trip; its answer (FILLED, the whole size) reaches the inspector at the round
trip's end, and its fills come through ingest and the bus `--bus-ms` after the venue filled it
(100-350 ms live), in parts as above. The answer is a caller of its own, as the executor's
placement task is.

Measured at the venue: the calls (an amendment is a cancel and a placement: no venue amends
yet), the longest time without a resting stop once the first one rests, and when the stops first
cover the whole position (from the first fill heard; in the answer's case, from the venue's
fill, which is what the position is exposed from).

    .venv/bin/python bench/protect_resize.py                      # this tree
    PYTHONPATH=<a checkout of another tree> python bench/protect_resize.py   # e.g. before
"""

from __future__ import annotations

import argparse
import heapq
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from trademesh.core.domain.contracts.intent import ExecutionIntent
from trademesh.core.domain.model import Fill, Liquidity, Order, OrderStatus, OrderType, Side, TimeInForce
from trademesh.core.inspector.engine.core import InspectorCore
from trademesh.core.inspector.engine.market import MarketView
from trademesh.core.inspector.engine.policies import PolicySet

MS = 1_000_000
T0 = 1_767_300_000_000_000_000
PARTS = 14
PART = Decimal("0.01")


@dataclass
class Venue:
    """The stops resting at the venue over time, and the calls it took."""

    calls: int = 0
    stops: dict[str, Decimal] = field(default_factory=dict)
    bare_since: int | None = None
    longest_bare_ns: int = 0
    first_stop_ns: int | None = None
    covered_ns: int | None = None

    def act(self, at: int, action: Any) -> None:
        kind = type(action).__name__
        if kind == "Amend":  # carried out as a cancel, then a placement (their own calls)
            return
        self.calls += 1
        if kind == "CancelOrder":
            self.stops.pop(action.client_order_id, None)
        elif kind == "PlaceOrder" and action.role.value == "stop_loss":
            self.stops[action.client_order_id] = action.size
            self.first_stop_ns = at if self.first_stop_ns is None else self.first_stop_ns
        self._watch(at)

    def _watch(self, at: int) -> None:
        covered = sum(self.stops.values(), Decimal(0))
        if covered >= PART * PARTS and self.covered_ns is None:
            self.covered_ns = at
        if self.first_stop_ns is None:
            return
        if not self.stops and self.bare_since is None:
            self.bare_since = at
        elif self.stops and self.bare_since is not None:
            self.longest_bare_ns = max(self.longest_bare_ns, at - self.bare_since)
            self.bare_since = None


class Model:
    def __init__(self, rtt_ms: float) -> None:
        self.rtt_ns = int(rtt_ms * MS)
        self.core = InspectorCore(PolicySet(), Decimal(100_000), T0)
        self.venue = Venue()
        self.queue: list[tuple[int, int, Callable[[int], None]]] = []
        self.seq = itertools.count()
        self.timer_busy = False

    def at(self, when: int, step: Callable[[int], None]) -> None:
        heapq.heappush(self.queue, (when, next(self.seq), step))

    def run(self) -> None:
        while self.queue:
            when, _, step = heapq.heappop(self.queue)
            step(when)
            self._wake(when)

    def carry_out(self, actions: list[Any], start: int, then: Callable[[int], None]) -> None:
        """The actions in turn, each after the answer to the one before; then `then`."""
        calls = []
        for action in actions:
            if type(action).__name__ == "Amend":
                calls += [_Cancel(action.client_order_id), action.order]
            elif type(action).__name__ in ("PlaceOrder", "CancelOrder"):
                calls.append(action)
        self._next(calls, 0, start, then)

    def _next(self, calls: list[Any], index: int, now: int, then: Callable[[int], None]) -> None:
        if index == len(calls):
            then(now)
            return
        call = calls[index]
        self.at(now + self.rtt_ns // 2, lambda t: self.venue.act(t, call))

        def answered(t: int) -> None:
            out = self._answer(call, t)
            self.carry_out(list(out), t, lambda t2: self._next(calls, index + 1, t2, then))

        self.at(now + self.rtt_ns, answered)

    def _answer(self, call: Any, t: int) -> tuple[Any, ...]:
        cancel = type(call).__name__ in ("CancelOrder", "_Cancel")
        status = OrderStatus.CANCELED if cancel else OrderStatus.OPEN
        working = self.core.book.orders.get(call.client_order_id)
        if working is None:
            return ()
        order = working.order
        update = Order(
            venue=order.venue, order_id=f"v-{order.client_order_id}", client_order_id=order.client_order_id,
            symbol=order.symbol, side=order.side, type=order.type, time_in_force=order.time_in_force,
            price=order.price, size=order.size, reduce_only=order.reduce_only, filled_size=Decimal(0),
            status=status,
        )  # fmt: skip
        return self.core.on_order_update(update, t).actions

    def _wake(self, now: int) -> None:
        on_timer = getattr(self.core, "on_timer", None)
        wake = getattr(self.core, "wake_ns", None)
        if on_timer is None or wake is None or self.timer_busy:
            return
        self.timer_busy = True

        def fire(t: int) -> None:
            actions = list(on_timer(t).actions)
            self.carry_out(actions, t, lambda _: setattr(self, "timer_busy", False))

        self.at(max(wake, now), fire)


@dataclass(frozen=True)
class _Cancel:
    client_order_id: str


def _intent() -> ExecutionIntent:
    return ExecutionIntent(
        intent_id="bench", decision_id="d", signal_id="s", strategy_id="bench", venue="sim",
        symbol="BTC/USDT", side=Side.BUY, size=PART * PARTS, entry_type=OrderType.MARKET,
        entry_price=None, stop_loss=Decimal(64000), take_profit=Decimal(66000),
        time_in_force=TimeInForce.IOC, expires_ns=T0 + 60_000 * MS, conviction=0.7,
        reduce_only=False, created_ns=T0,
    )  # fmt: skip


def _fill(coid: str, n: int) -> Fill:
    return Fill(
        fill_id=f"f{n}", order_id="v-entry", client_order_id=coid, symbol="BTC/USDT", side=Side.BUY,
        price=Decimal(65000) + n, size=PART, fee=Decimal(0), fee_asset="USDT", liquidity=Liquidity.TAKER,
        trade_id=f"t{n}", ts_event_ns=T0,
    )  # fmt: skip


def _answer(order: Any) -> Order:
    """The venue's answer to the market entry: FILLED, the whole size, at its average price."""
    return Order(
        venue=order.venue, order_id="v-entry", client_order_id=order.client_order_id, symbol=order.symbol,
        side=order.side, type=order.type, time_in_force=order.time_in_force, price=order.price,
        size=order.size, filled_size=order.size, average_fill_price=Decimal(65000) + Decimal(PARTS - 1) / 2,
        status=OrderStatus.FILLED,
    )  # fmt: skip


def run(apart_ms: float, rtt_ms: float, bus_ms: float | None = None) -> dict[str, Any]:
    """`bus_ms` None: the fills from the first heard (at 0), no answer; else the venue's answer
    first: the venue fills at half the round trip (0 here), the answer is heard a half round trip
    later, the fills `bus_ms` after the venue's fill."""
    model = Model(rtt_ms)
    market = MarketView(Decimal(64999), Decimal(65001), Decimal(65000))
    start = T0 if bus_ms is None else T0 - model.rtt_ns // 2  # the entry sent
    order = model.core.on_intent(_intent(), market, start).orders[0]
    entry = order.client_order_id
    first = T0 if bus_ms is None else T0 + int(bus_ms * MS)
    arrivals = [first + int(i * apart_ms * MS) for i in range(PARTS)]
    pending = list(range(PARTS))
    if bus_ms is not None:

        def answered(now: int) -> None:
            model.carry_out(
                list(model.core.on_order_update(_answer(order), now).actions), now, lambda _: None
            )

        model.at(T0 + model.rtt_ns // 2, answered)

    def follower(now: int) -> None:  # the execution stream's reader: one fill at a time
        if not pending:
            return
        n = pending[0]
        if arrivals[n] > now:
            model.at(arrivals[n], follower)
            return
        pending.pop(0)
        out = model.core.on_fill("sim", _fill(entry, n), now)
        model.carry_out(list(out.actions), now, follower)

    model.at(first, follower)
    model.run()
    venue = model.venue
    return {
        "venue calls": venue.calls,
        "first stop rests at (ms)": None if venue.first_stop_ns is None else (venue.first_stop_ns - T0) / MS,
        "longest no-stop gap after it (ms)": venue.longest_bare_ns / MS,
        "whole position covered at (ms)": None if venue.covered_ns is None else (venue.covered_ns - T0) / MS,
        "last fill heard at (ms)": (arrivals[-1] - T0) / MS,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rtt-ms", type=float, default=20.0, help="each venue call's round trip")
    parser.add_argument(
        "--bus-ms", type=float, default=200.0, help="the venue's answer first: its fills this long after"
    )
    args = parser.parse_args()
    for apart in (143.0, 0.0):
        print(f"fills {apart:g} ms apart, venue calls of {args.rtt_ms:g} ms:")
        for name, value in run(apart, args.rtt_ms).items():
            print(f"  {name}: {value}")
    for apart in (143.0, 0.0):
        print(
            f"the venue's answer first, fills {args.bus_ms:g} ms after the venue's fill and {apart:g} ms "
            f"apart, venue calls of {args.rtt_ms:g} ms (times from the venue's fill):"
        )
        for name, value in run(apart, args.rtt_ms, args.bus_ms).items():
            print(f"  {name}: {value}")


if __name__ == "__main__":
    main()
