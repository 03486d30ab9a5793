"""The leverage, liquidation and margin checks of an entry on a leveraged derivatives market
(docs/inspector-orders.md, "Leverage, margin and liquidation"): the leverage it is held at (the
intent's, else the venue's setting in force) against leverage.max (per symbol) and the
account's against leverage.max_overall; its liquidation price, estimated from that leverage and
the venue's maintenance rate, against liquidation.min_distance_entry; the initial margin held
with it against margin.max_use. A spot market, or a venue without leverage, is not checked."""

from __future__ import annotations

from decimal import Decimal

from trademesh.core.domain.decimals import format_decimal as text
from trademesh.core.domain.model import Side
from trademesh.core.inspector.engine.book import RiskBook
from trademesh.core.inspector.engine.checks import Breach, OrderProposal
from trademesh.core.inspector.engine.margin import MarginBook, distance, estimate_liquidation, settle_asset
from trademesh.core.inspector.engine.policies import PolicySet

__all__ = ["leverage_checks", "leverage_of"]

ZERO = Decimal(0)
# A ratio as a risk event shows it (a quotient of two amounts is 28 digits).
_SHOWN = Decimal("1e-8")


def _ratio(value: Decimal) -> str:
    return text(value.quantize(_SHOWN))


def leverage_of(margin: MarginBook, proposal: OrderProposal) -> Decimal | None:
    """The leverage the entry's position is held at: the intent's, else the venue's in force."""
    own = proposal.intent.leverage
    return own if own is not None else margin.settings.get(proposal.key)


def _needs_leverage(p: PolicySet, symbol: str) -> bool:
    return any(
        limit is not None
        for limit in (
            p.leverage.limit_for(symbol),
            p.leverage.max_overall,
            p.liquidation.min_distance_entry,
            p.margin.max_use,
        )
    )


def leverage_checks(
    p: PolicySet, margin: MarginBook, book: RiskBook, proposal: OrderProposal, equity: Decimal
) -> list[Breach]:
    """The entry's breaches of the leverage policies (`equity`: the account's, in the quote
    asset, for leverage.max_overall); none for a market that is not leveraged."""
    if not margin.leveraged(proposal.key, proposal.facts):
        return []
    leverage = leverage_of(margin, proposal)
    if leverage is None:
        if not _needs_leverage(p, proposal.intent.symbol):
            return []
        intent = proposal.intent
        reason = f"the leverage in force for {intent.symbol} at {intent.venue} is not known yet"
        return [Breach("leverage.unknown", reason, (("venue", intent.venue), ("symbol", intent.symbol)))]
    found = [
        _check_max(p, proposal, leverage),
        _check_overall(p, margin, book, proposal, equity),
        _check_entry_distance(p, margin, proposal, leverage),
        _check_margin_use(p, margin, proposal, leverage),
    ]
    return [b for b in found if b is not None]


def _check_max(p: PolicySet, proposal: OrderProposal, leverage: Decimal) -> Breach | None:
    limit = p.leverage.limit_for(proposal.intent.symbol)
    if limit is None or leverage <= limit:
        return None
    reason = f"leverage {text(leverage)}x would exceed the limit {text(limit)}x for {proposal.intent.symbol}"
    return Breach("leverage.max", reason, (("value", text(leverage)), ("limit", text(limit))))


def _check_overall(
    p: PolicySet, margin: MarginBook, book: RiskBook, proposal: OrderProposal, equity: Decimal
) -> Breach | None:
    """Every leveraged position's worst case (its open entries filled, this order too) at the
    marks, over the equity."""
    limit = p.leverage.max_overall
    if limit is None:
        return None
    gross = ZERO
    for key in sorted(book.keys() | {proposal.key}):
        if not margin.leveraged(key, book.facts.get(key)):
            continue
        side, size = (proposal.intent.side, proposal.intent.size) if key == proposal.key else (None, ZERO)
        mark = book.marks.get(key, proposal.price)
        gross += book.value(key, book.worst_size(key, side, size), mark)
    values = (("gross", text(gross)), ("equity", text(equity)), ("limit", text(limit)))
    if equity <= 0:
        return Breach("leverage.max_overall", f"the equity is {text(equity)}: no leverage", values)
    overall = gross / equity
    if overall <= limit:
        return None
    reason = f"the account's leverage {_ratio(overall)}x would exceed the limit {text(limit)}x"
    return Breach("leverage.max_overall", reason, (("value", _ratio(overall)), *values))


def _check_entry_distance(
    p: PolicySet, margin: MarginBook, proposal: OrderProposal, leverage: Decimal
) -> Breach | None:
    """The entry's estimated liquidation price (margin.estimate_liquidation), and the venue's
    of the position it adds to, at least the policy's distance from the price."""
    limit = p.liquidation.min_distance_entry
    if limit is None:
        return None
    intent, price = proposal.intent, proposal.price
    rate = margin.maintenance_rate(proposal.key)
    rate = rate if rate is not None else p.liquidation.maintenance_rate
    liquidation = estimate_liquidation(price, leverage, rate, intent.side, proposal.inverse)
    near = distance(price, liquidation)
    held = margin.positions.get(proposal.key)
    if (
        held is not None
        and held.liquidation_price is not None
        and _same_side(held.liquidation_price, price, intent.side)
    ):
        own = distance(price, held.liquidation_price)
        if own < near:  # the position it adds to is nearer its liquidation already
            near, liquidation = own, held.liquidation_price
    if near >= limit:
        return None
    shown = "none" if liquidation is None else text(liquidation)
    reason = (
        f"liquidation at {shown} is {_ratio(near)} from the price {text(price)} at {text(leverage)}x,"
        f" nearer than the limit {text(limit)}"
    )
    values = (
        ("value", _ratio(near)), ("limit", text(limit)), ("liquidation_price", shown),
        ("price", text(price)), ("leverage", text(leverage)), ("maintenance_rate", text(rate)),
    )  # fmt: skip
    return Breach("liquidation.min_distance_entry", reason, values)


def _same_side(liquidation: Decimal, price: Decimal, side: Side) -> bool:
    """A venue's liquidation price below the price is a long's (above: a short's): an entry of
    that side adds to the position."""
    return (liquidation < price) == (side.sign > 0)


def _check_margin_use(
    p: PolicySet, margin: MarginBook, proposal: OrderProposal, leverage: Decimal
) -> Breach | None:
    limit = p.margin.max_use
    if limit is None:
        return None
    venue, asset = proposal.intent.venue, settle_asset(proposal.intent.symbol)
    equity = margin.equity(venue, asset)
    if equity is None:
        reason = f"{venue} has not reported its {asset} balance: its margin use is not known"
        return Breach("margin.max_use", reason, (("asset", asset),))
    coin = proposal.coin_notional
    needed = (coin if coin is not None else proposal.notional) / leverage
    held = margin.held_margin(venue, asset)
    values = (
        ("held", text(held)), ("order_margin", text(needed.quantize(_SHOWN))), ("equity", text(equity)),
        ("asset", asset), ("limit", text(limit)),
    )  # fmt: skip
    if equity <= 0:
        return Breach("margin.max_use", f"the {asset} equity at {venue} is {text(equity)}", values)
    use = (held + needed) / equity
    if use <= limit:
        return None
    reason = f"margin use {_ratio(use)} of the {asset} equity at {venue} would exceed the limit {text(limit)}"
    return Breach("margin.max_use", reason, (("value", _ratio(use)), *values))
