"""The journal's form of a venue's derivatives account (risk.v1.JournalMargin) to the core's
MarginReport and back: the shell journals what the venue reports, a snapshot what the core
holds (trademesh.core.inspector.snapshot), both read by `report_from_pb`. Decimals keep their digits
(str, not format_decimal): a restored core equals the original."""

from __future__ import annotations

from decimal import Decimal

from trademesh.core.domain.convert import MARGIN_MODE_TO_PB, position_from_pb
from trademesh.core.domain.model import PositionMargin
from trademesh.core.inspector.engine.margin import MarginBook, MarginReport, SettleBalance
from trademesh.risk.v1 import journal_pb2 as jr
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf

__all__ = ["margin_to_pb", "report_from_pb", "settle_balance"]


def settle_balance(balance: tf.Balance) -> SettleBalance:
    """A venue's balance as the core weighs margin on it: its total (free + locked when the
    venue does not say it), and the margin its positions hold ("" : not said)."""
    if balance.total:
        total = Decimal(balance.total)
    else:
        total = Decimal(balance.free or "0") + Decimal(balance.locked or "0")
    held = Decimal(balance.position_margin) if balance.position_margin else None
    return SettleBalance(total, held)


def report_from_pb(entry: jr.JournalMargin) -> MarginReport:
    """Positions without margin figures (no settle asset) or flat are left out."""
    positions = None
    if entry.positions_said:
        read = (position_from_pb(p) for p in entry.positions)
        positions = {p.symbol: p.margin for p in read if p.margin is not None and p.size != 0}
    return MarginReport(
        venue=entry.venue,
        leverage=entry.leverage,
        positions=positions,
        balances={b.asset: settle_balance(b) for b in entry.balances},
        settings={s.symbol: Decimal(s.leverage) for s in entry.settings if s.leverage},
    )


def _opt(value: Decimal | None) -> str:
    return "" if value is None else str(value)


def _position(symbol: str, m: PositionMargin) -> tf.Position:
    """The core keeps no size of a venue's position: 1 stands for "held" (flat ones are dropped)."""
    message = tf.Position(
        symbol=symbol, size="1", settle_asset=m.settle_asset, leverage=_opt(m.leverage),
        mark_price=_opt(m.mark_price), initial_margin=_opt(m.initial_margin),
        maintenance_margin=_opt(m.maintenance_margin), margin_ratio=_opt(m.margin_ratio),
        unrealized_pnl=_opt(m.unrealized_pnl), liquidation_price=_opt(m.liquidation_price),
    )  # fmt: skip
    if m.mode is not None:
        message.margin_mode = MARGIN_MODE_TO_PB[m.mode]
    return message


def margin_to_pb(book: MarginBook) -> list[jr.JournalMargin]:
    """Each venue's account as the core holds it, one entry a venue (sorted)."""
    venues = sorted(set(book.capable) | {k[0] for k in book.settings} | {k[0] for k in book.balances})
    entries = []
    for venue in venues:
        entry = jr.JournalMargin(venue=venue, leverage=book.capable.get(venue, False), positions_said=True)
        for (v, symbol), m in sorted(book.positions.items()):
            if v == venue:
                entry.positions.append(_position(symbol, m))
        for (v, asset), b in sorted(book.balances.items()):
            if v == venue:
                entry.balances.add(asset=asset, total=str(b.total), position_margin=_opt(b.position_margin))
        for (v, symbol), leverage in sorted(book.settings.items()):
            if v == venue:
                entry.settings.add(symbol=symbol, leverage=str(leverage))
        entries.append(entry)
    return entries
