"""An exit of a strategy's cancels that strategy's entries still working in its market.

A strategy's exit (its own close, reduce or flip request; the advisor's flat signal: a
reduce-only intent) is sized to what the strategy holds when it is allowed. An entry of the
same strategy still working there (the rest of a limit entry the book's displayed size did not
fill at once, the advisor's default `limit_cross`) would fill after the exit and open again what
the exit closed: an unasked position, found on paper Binance (docs/paper.md, "A strategy on
paper, end to end"). So the exit cancels them first, each with a NOTICE; what they filled
already is the strategy's share, which the exit takes. Entries the venue said are done are
left: their fills are on their way, and the exit's size does not count them (as a stand-down
leaves them).
"""

from __future__ import annotations

from trademesh.core.domain.contracts.intent import ExecutionIntent
from trademesh.core.domain.decimals import format_decimal as text
from trademesh.core.inspector.engine.actions import CancelOrder
from trademesh.core.inspector.engine.book import RiskBook
from trademesh.core.inspector.engine.events import RiskAction
from trademesh.core.inspector.engine.state import Collector

__all__ = ["POLICY", "cancel_entries_of"]

POLICY = "exit.working_entry"


def cancel_entries_of(book: RiskBook, exit_: ExecutionIntent, out: Collector) -> None:
    """Cancel the working entries of `exit_`'s strategy in its market (module docstring)."""
    key = (exit_.venue, exit_.symbol)
    for working in book.orders.entries(key):
        order = working.order
        if order.strategy_id != exit_.strategy_id or working.cancelling or working.final_size is not None:
            continue
        working.cancelling = True
        out.actions.append(CancelOrder(order.client_order_id, *key, "its strategy exits"))
        left = text(working.remaining)
        reason = (
            f"an entry's {left} still working cancelled: strategy {order.strategy_id!r} exits "
            f"(intent {exit_.intent_id}), which it would undo"
        )
        values = (("order", order.client_order_id), ("remaining", left), ("exit", exit_.intent_id))
        out.event(
            RiskAction.NOTICE, POLICY, reason, values,
            venue=key[0], symbol=key[1], strategy_id=order.strategy_id, intent_id=order.intent_id,
        )  # fmt: skip
