"""A backtest's mark reaches the inspector's core by apply_entry's own call for a mark entry, the
entry not made and read back (trademesh.core.backtest.inspect): the same core, orders and counts as the
journal entry fed whole, over marks that trail a stop and move the equity curve (prices with
trailing zeros among them: the entry carries their text)."""

from __future__ import annotations

from decimal import Decimal

from tests.unit.test_backtest_amend import SYMBOL, _long_held, _run
from trademesh.core.backtest.inspect import InspectStage
from trademesh.core.backtest.market import ReplayedMarket
from trademesh.core.domain.decimals import format_decimal
from trademesh.risk.v1 import journal_pb2 as jr

D = Decimal
PRICES = ["104", "104.50", "103.10", "108.0", "108.00", "60", "61.5", "120"]


def _entry_mark(stage: InspectStage, price: Decimal, now_ns: int) -> None:
    """The mark as a journal entry fed whole (InspectStage.mark before it called the core)."""
    key = (stage.venue, SYMBOL)
    if stage.marks.get(key) == price:
        return
    stage.marks[key] = price
    mark = jr.JournalMark(venue=stage.venue, symbol=SYMBOL, price=format_decimal(price))
    stage._feed(jr.JournalEntry(now_ns=now_ns, mark=mark))


def _seen(stage: InspectStage, market: ReplayedMarket) -> tuple[object, ...]:
    core = stage.core
    orders = sorted(
        (o.client_order_id, o.type, o.price, o.trigger_price, o.size, o.status) for o in market.open_orders()
    )
    working = sorted((w.order.client_order_id, repr(w.order)) for w in core.book.orders)
    return (
        stage.entries, repr(core.book.marks), repr(core.curve), core.state, orders, working,
        repr(core.book.positions.positions),
    )  # fmt: skip


def test_a_mark_called_directly_leaves_what_its_journal_entry_leaves() -> None:
    (direct, direct_market), (fed, fed_market) = _long_held(), _long_held()
    assert _seen(direct, direct_market) == _seen(fed, fed_market)
    triggers, equities = set(), set()
    for i, text in enumerate(PRICES):
        now = 300 + 1_000 * i
        direct.mark(SYMBOL, D(text), now)
        _entry_mark(fed, D(text), now)
        _run(direct, direct_market, now + 500)
        _run(fed, fed_market, now + 500)
        assert _seen(direct, direct_market) == _seen(fed, fed_market), text
        triggers |= {o.trigger_price for o in direct_market.open_orders() if o.type.is_stop}
        equities.add(direct.core.curve.equity)
    assert len(triggers) > 1 and len(equities) > 1  # the marks trailed the stop and moved the curve
