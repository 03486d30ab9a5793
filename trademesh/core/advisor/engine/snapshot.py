"""Stage 1, context: accept the gathered context for a signal and derive what later stages use
(mid, spread, the last event's age, the position, equity). A context that cannot support a
decision (another market's, no price at all) blocks here, with the reasons."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from trademesh.core.advisor.engine.context import Context
from trademesh.core.domain.contracts.signal import Direction, Signal

__all__ = ["ContextSnapshot", "snapshot"]


@dataclass(frozen=True)
class ContextSnapshot:
    context: Context
    reference_price: Decimal | None  # the mid of an uncrossed book, else the last trade
    spread_ratio: Decimal | None  # None without a book
    last_event_age_ns: int | None
    position: Decimal  # signed, in this symbol
    equity: Decimal | None  # the sizing equity: the settlement coin's for an inverse contract
    problems: tuple[str, ...]  # empty when the context is usable

    @property
    def accepted(self) -> bool:
        return not self.problems


def _reference_price(context: Context) -> Decimal | None:
    book = context.book
    if book is not None and not book.crossed and book.bid > 0:
        return book.mid
    return context.price


def _problems(signal: Signal, context: Context, reference: Decimal | None) -> list[str]:
    problems = []
    if (context.venue, context.symbol) != (signal.venue, signal.symbol):
        problems.append(
            f"context is for {context.venue} {context.symbol}, the signal for {signal.venue} {signal.symbol}"
        )
    if reference is None or reference <= 0:
        problems.append("no price: neither a last trade nor an uncrossed book")
    if signal.direction is not Direction.FLAT and context.instrument is None:
        problems.append("no instrument facts (tick size, lot size) to size an order")
    return problems


def snapshot(signal: Signal, context: Context, now_ns: int) -> ContextSnapshot:
    reference = _reference_price(context)
    age = None if context.last_event_ns is None else max(0, now_ns - context.last_event_ns)
    return ContextSnapshot(
        context=context,
        reference_price=reference,
        spread_ratio=None if context.book is None else context.book.spread_ratio,
        last_event_age_ns=age,
        position=context.position_size(),
        equity=context.sizing_equity(),
        problems=tuple(_problems(signal, context, reference)),
    )
