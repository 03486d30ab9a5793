"""The reconciliation's alarms (trademesh.core.inspector.reconcile, trademesh.core.inspector.discrepancy): a
difference between a venue's balance and the ledger's books, or between a venue's position and
the inspector's book, is an alarm when the same difference is seen again, not when two different
transient ones (fills in flight) follow each other."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

from prometheus_client import REGISTRY

from trademesh.core.inspector.discrepancy import Discrepancies
from trademesh.core.inspector.engine.actions import CancelOrder
from trademesh.core.inspector.reconcile import Reconciler
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf

D = Decimal


def reconciler() -> Reconciler:
    # _books_agree reads only the shell's clock.
    shell: Any = SimpleNamespace(runtime=SimpleNamespace(clock=lambda: 1), legacy={}, stood_down={})
    return Reconciler(shell)


def notices(r: Reconciler, venue_usdt: str, books_usdt: str) -> list[str]:
    return [e.reason for e in r._books_agree("sim", {"USDT": D(venue_usdt)}, {"USDT": D(books_usdt)})]


def test_two_different_transient_mismatches_are_no_alarm() -> None:
    r = reconciler()
    assert notices(r, "1000", "990") == []  # a fill of 10 in flight
    assert notices(r, "1030", "1010") == []  # the books caught up with it; another, of 20, in flight
    assert notices(r, "1030", "1030") == []


def test_the_same_difference_seen_again_is_one_alarm_and_its_end_is_said() -> None:
    r = reconciler()
    assert notices(r, "1000", "990") == []
    assert notices(r, "1020", "1010") == ["USDT is 1020 at the venue, 1010 in the ledger's books"]
    assert notices(r, "1020", "1010") == []  # said once
    assert notices(r, "1020", "1020") == ["USDT agrees with the ledger again"]


def test_a_difference_that_never_settles_is_an_alarm_in_the_end() -> None:
    seen: Discrepancies[str] = Discrepancies(repeats=2, unsettled=4)
    assert [seen.check("usdt", D(n)) for n in (1, 2, 3, 4)] == [False, False, False, True]
    assert seen.check("usdt", D(0)) is False and seen.check("usdt", D(5)) is False


class _Core:
    """The core as the position check reads it: a book of positions."""

    def __init__(self, size: str) -> None:
        position = SimpleNamespace(size=D(size))
        self.book = SimpleNamespace(positions=SimpleNamespace(positions={("sim", "ETH/USDT"): position}))

    def hold(self, size: str) -> None:
        self.book.positions.positions[("sim", "ETH/USDT")].size = D(size)


def diverged(r: Reconciler, venue_size: str) -> list[tuple[str, Decimal, Decimal]]:
    positions = {"ETH/USDT": tf.Position(symbol="ETH/USDT", size=venue_size)}
    return r._diverged("sim", positions).diverged


def test_two_different_fills_in_flight_are_no_position_divergence() -> None:
    """Seen in a Studio test (checks every second, the advisor trading): the venue ahead of the
    book by a fill in flight at one check and by another at the next, counted as a divergence
    that stood the venue down. Two different differences are two fills in flight."""
    book = _Core("6.331")
    shell: Any = SimpleNamespace(runtime=SimpleNamespace(ready_core=book, clock=lambda: 1), legacy={})
    r = Reconciler(shell)
    assert diverged(r, "6.5") == []  # a fill of 0.169 in flight
    book.hold("6.5")
    assert diverged(r, "6.7873") == []  # heard; another, of 0.2873, in flight
    book.hold("6.7873")
    assert diverged(r, "6.7873") == []


def test_the_same_position_difference_seen_again_is_a_divergence() -> None:
    book = _Core("6.331")
    shell: Any = SimpleNamespace(runtime=SimpleNamespace(ready_core=book, clock=lambda: 1), legacy={})
    r = Reconciler(shell)
    assert diverged(r, "6.7873") == []
    assert diverged(r, "6.7873") == [("ETH/USDT", D("6.7873"), D("6.331"))]


async def test_the_divergences_standing_are_shown_after_each_reconciliation() -> None:
    async def publish(*_: Any) -> None:
        return None

    runtime = SimpleNamespace(clock=lambda: 1, risk_log=SimpleNamespace(publish=publish))
    shell: Any = SimpleNamespace(runtime=runtime, links=SimpleNamespace(names=list), legacy={}, stood_down={})
    r = Reconciler(shell)

    def shown() -> dict[str, float | None]:
        return {check: REGISTRY.get_sample_value("trademesh_inspector_divergences", {"check": check})
                for check in ("position", "ledger")}  # fmt: skip

    notices(r, "1020", "1010")
    notices(r, "1020", "1010")  # the ledger's books differ: an alarm
    shell.stood_down["sim"] = "position ETH/USDT is 2 at the venue, 1 in our book"
    await r.check_once()
    assert shown() == {"position": 1.0, "ledger": 1.0}
    notices(r, "1020", "1020")
    shell.stood_down.clear()
    await r.check_once()
    assert shown() == {"position": 0.0, "ledger": 0.0}


class _Venue:
    """A venue's TradeFlow as the orders' comparison reads it: two open orders."""

    metadata = ()

    def __init__(self) -> None:
        self.tradeflow = self
        self.asked = 0

    async def ListOpenOrders(self, request: tf.ListOpenOrdersRequest, **_: Any) -> tf.ListOpenOrdersResponse:
        self.asked += 1
        return tf.ListOpenOrdersResponse(orders=[
            tf.Order(client_order_id="orphan", symbol="BTC/USDT"),  # ours, ended in the core
            tf.Order(client_order_id="going", symbol="BTC/USDT"),  # the core is cancelling it
        ])  # fmt: skip


async def test_a_refused_reduce_only_order_has_the_venues_open_orders_compared_at_once() -> None:
    """A chaos run: the venue held a stop the core did not count, refused each stop the core
    placed beside it, and the third refusal in a row (3.5 s) came before the 10 s round. Woken,
    the orders are compared before the round: an orphan of ours is cancelled, an order the core
    is cancelling has its state asked (the core cancels it again); the positions wait."""
    venue = _Venue()
    fed: list[str] = []
    cancels: list[str] = []
    published: list[str] = []
    going = SimpleNamespace(cancelling=True, unknown=False)
    core = SimpleNamespace(book=SimpleNamespace(orders={"going": going}))

    async def feed(entry: Any) -> None:
        fed.append(entry.placement_unknown)

    async def cancel(action: CancelOrder) -> None:
        cancels.append(action.client_order_id)

    said = asyncio.Event()

    async def publish(events: list[Any], *_: Any) -> None:
        published.extend(e.policy for e in events)
        said.set()

    runtime = SimpleNamespace(
        clock=lambda: 1, ready_core=core, feed=feed, audit=SimpleNamespace(records={"orphan": object()}),
        executor=SimpleNamespace(cancel=cancel, timeout_s=1.0), risk_log=SimpleNamespace(publish=publish),
    )  # fmt: skip
    links = SimpleNamespace(names=lambda: ["sim"], desk=lambda _: venue)
    shell: Any = SimpleNamespace(runtime=runtime, links=links, legacy={}, stood_down={})
    r, stop = Reconciler(shell), asyncio.Event()
    running = asyncio.create_task(r.run(stop, every_s=3600.0))  # the round never comes here
    r.wake("sim")

    await asyncio.wait_for(said.wait(), 5)
    stop.set()
    await asyncio.wait_for(running, 5)
    assert (venue.asked, cancels, fed, published) == (1, ["orphan"], ["going"], ["reconcile.orphan"])
    assert r.checks == 0  # the positions and books wait for the round
