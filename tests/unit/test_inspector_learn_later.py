"""A venue that did not say what it can do when a stop was placed (it did not answer, or the
inspector was frozen past the question's deadline): the stop is held here meanwhile, the venue
is asked again in the background, and once it says it holds stops itself the held stop goes to
it under its own id. A chaos run and a freeze probe found the old way: the question failed once,
the stop was emulated for good, and the position had no stop at the venue until its next entry."""

from __future__ import annotations

from typing import Any

from tests.unit.test_inspector_executor_order import Desk, _until, stop_loss
from trademesh.core.inspector.engine.actions import CancelOrder
from trademesh.core.inspector.executor import Executor
from trademesh.risk.v1 import journal_pb2 as jr
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf


class LateLinks:
    """A venue whose first `unanswered` questions (GetStatus) go unanswered, then says whether it
    holds stops itself."""

    metadata = ()

    def __init__(self, unanswered: int, stops: bool) -> None:
        self.unanswered = unanswered
        self.stops = stops
        self.asked = 0
        self.venue = Desk()
        self._known: bool | None = None

    async def learn(self, venue: str, timeout_s: float) -> None:
        if self.knows(venue):  # as VenueLinks: asked once answered
            return
        self.asked += 1
        if self.asked > self.unanswered:
            self._known = self.stops

    def knows(self, venue: str) -> bool:
        return self._known is not None

    def native_stops(self, venue: str) -> bool:
        return bool(self._known)

    def amends(self, venue: str) -> bool:
        return False

    def desk(self, venue: str) -> Any:
        return self.venue


async def _no_tick() -> None:
    return None


def executor(links: LateLinks) -> tuple[Executor, list[tuple[str, int, str]]]:
    fed: list[tuple[str, int, str]] = []

    async def feed(entry: jr.JournalEntry) -> None:
        update = entry.order_update
        fed.append((update.client_order_id, update.status, update.status_reason))

    made = Executor(links, feed, lambda: 1)  # type: ignore[arg-type]
    made.ticks.tick = lambda venue, symbol: _no_tick()  # type: ignore[method-assign]
    return made, fed


async def test_a_stop_held_while_the_venue_did_not_answer_goes_to_it_once_it_does() -> None:
    links = LateLinks(unanswered=2, stops=True)
    made, fed = executor(links)
    await made.carry_out([stop_loss()])
    assert made.stops.holds("stop-1") and links.venue.calls == []  # held meanwhile: not lost
    await _until(lambda: links.venue.calls == ["place stop-1"])
    assert not made.stops.holds("stop-1")
    assert [(i, s) for i, s, _ in fed] == [("stop-1", tf.ORDER_STATUS_OPEN), ("stop-1", tf.ORDER_STATUS_OPEN)]
    assert fed[0][2].startswith("emulated") and not fed[1][2]  # the venue's own answer last
    assert links.asked == 3
    await made.close()


async def test_a_venue_that_says_it_holds_no_stops_keeps_them_held_here() -> None:
    links = LateLinks(unanswered=1, stops=False)
    made, _ = executor(links)
    await made.carry_out([stop_loss()])
    await _until(lambda: links.knows("sim") and not made._learning)  # asked, and done with
    assert made.stops.holds("stop-1") and links.venue.calls == []
    await made.close()


async def test_a_venue_that_answers_at_once_takes_the_stop_at_once() -> None:
    links = LateLinks(unanswered=0, stops=True)
    made, _ = executor(links)
    await made.carry_out([stop_loss()])
    assert links.venue.calls == ["place stop-1"] and not made.stops.holds("stop-1")
    assert links.asked == 1
    await made.close()


async def test_a_stop_cancelled_while_held_never_goes_to_the_venue() -> None:
    links = LateLinks(unanswered=3, stops=True)
    made, fed = executor(links)
    await made.carry_out([stop_loss()])
    await made.carry_out([CancelOrder("stop-1", "sim", "BTC/USDT", "no longer needed")])
    await _until(lambda: links.knows("sim") and not made._learning)
    assert links.venue.calls == []
    assert [s for _, s, _ in fed] == [tf.ORDER_STATUS_OPEN, tf.ORDER_STATUS_CANCELED]
    await made.close()
