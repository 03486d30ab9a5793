"""Each policy's check of a proposed order: None when it passes, else a Breach with the policy,
the values it was decided on and the reason. At a limit passes; past it does not."""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal

from trademesh.core.domain.contracts.intent import ExecutionIntent
from trademesh.core.domain.decimals import format_decimal as text
from trademesh.core.domain.decimals import is_multiple
from trademesh.core.domain.model import Side
from trademesh.core.inspector.engine.book import RiskBook
from trademesh.core.inspector.engine.equity import LossStreak, local_time
from trademesh.core.inspector.engine.instruments import InstrumentFacts
from trademesh.core.inspector.engine.policies import WEEKDAYS, PolicySet
from trademesh.core.inspector.engine.positions import Key
from trademesh.core.inspector.engine.rates import RateWindow, rate_time
from trademesh.core.inspector.engine.spot import POLICY as SPOT_SHORT
from trademesh.core.inspector.engine.spot import base_asset, deliverable

__all__ = [
    "ORDER_LOT",
    "ORDER_TICK",
    "Breach",
    "OrderProposal",
    "check_listed",
    "check_spot",
    "check_venue",
    "entry_checks",
    "exit_checks",
    "on_the_grid",
    "order_checks",
]

_NS_PER_MS = 1_000_000
# An intent off its instrument's grid (on_the_grid).
ORDER_TICK = "orders.tick"
ORDER_LOT = "orders.lot"
ZERO = Decimal(0)


@dataclass(frozen=True)
class OrderProposal:
    """An intent's order as checked: `price` values it (its limit, else the far touch)."""

    intent: ExecutionIntent
    price: Decimal
    mid: Decimal | None
    now_ns: int
    facts: InstrumentFacts | None = None  # the venue's, when known: an inverse one's face value

    @property
    def key(self) -> Key:
        return (self.intent.venue, self.intent.symbol)

    @property
    def inverse(self) -> bool:
        return self.facts is not None and self.facts.inverse

    @property
    def notional(self) -> Decimal:
        """In the quote asset: size x contract value x price (a linear contract's value in base
        units a unit, 1 for spot), or an inverse contract's face value."""
        if self.facts is not None:
            return self.facts.notional(self.intent.size, self.price)
        return self.intent.size * self.price

    @property
    def coin_notional(self) -> Decimal | None:
        """An inverse contract's notional in the coin it settles in, at the order's price."""
        if self.facts is None or not self.facts.inverse:
            return None
        return self.facts.coin_notional(self.intent.size, self.price)


@dataclass(frozen=True)
class Breach:
    policy: str
    reason: str
    values: tuple[tuple[str, str], ...]
    throttle: bool = False  # a rate limit: the same order may pass later


def _over(policy: str, what: str, value: Decimal | int, limit: Decimal | int) -> Breach | None:
    if value <= limit:
        return None
    shown, most = _figure(value), _figure(limit)
    return Breach(
        policy, f"{what} {shown} would exceed the limit {most}", (("value", shown), ("limit", most))
    )


def _figure(value: Decimal | int) -> str:
    """A decimal as the API shows it (no trailing zeros of a product: 10080, not 10080.000)."""
    return text(value) if isinstance(value, Decimal) else str(value)


def check_schedule(p: PolicySet, proposal: OrderProposal) -> Breach | None:
    if not p.schedule.windows:
        return None
    local = local_time(proposal.now_ns, p.schedule.zone)
    day, minute = WEEKDAYS[local.weekday()], local.hour * 60 + local.minute
    windows = p.schedule.windows.get(day, ())
    if any(w.holds(minute) for w in windows):
        return None
    spans = ", ".join(str(w) for w in windows) or "none"
    return Breach(
        "schedule.windows",
        f"{local:%a %H:%M} {p.schedule.timezone} is outside the day's windows ({spans})",
        (("local_time", f"{local:%Y-%m-%d %H:%M}"), ("windows", spans)),
    )


def check_cooldown(p: PolicySet, streak: LossStreak, proposal: OrderProposal) -> Breach | None:
    until = streak.cooling_until(p.loss.cooldown_after_loss_ms)
    if until is None or proposal.now_ns >= until:
        return None
    left_ms = (until - proposal.now_ns) // _NS_PER_MS
    return Breach(
        "loss.cooldown_after_loss_ms",
        f"cooling down after a loss for {left_ms} ms more",
        (("remaining_ms", str(left_ms)), ("limit", str(p.loss.cooldown_after_loss_ms))),
    )


def check_position(p: PolicySet, book: RiskBook, proposal: OrderProposal) -> list[Breach]:
    limit = p.position.limit_for(proposal.intent.symbol)
    size = book.worst_size(proposal.key, proposal.intent.side, proposal.intent.size)
    mark = book.marks.get(proposal.key, proposal.price)
    found = [
        limit.max_size is not None and _over("position.max_size", "position size", size, limit.max_size),
        limit.max_notional is not None
        and _over(
            "position.max_notional",
            "position notional",
            book.value(proposal.key, size, mark),
            limit.max_notional,
        ),
    ]
    return [b for b in found if isinstance(b, Breach)]


def check_exposure(p: PolicySet, book: RiskBook, proposal: OrderProposal) -> list[Breach]:
    if p.exposure.max_gross is None and p.exposure.max_net is None:
        return []
    extra = (proposal.key, proposal.intent.side, proposal.intent.size, proposal.price)
    gross, net = book.exposure(extra)
    found = [
        p.exposure.max_gross is not None
        and _over("exposure.max_gross", "gross exposure", gross, p.exposure.max_gross),
        p.exposure.max_net is not None and _over("exposure.max_net", "net exposure", net, p.exposure.max_net),
    ]
    return [b for b in found if isinstance(b, Breach)]


def check_account(p: PolicySet, book: RiskBook, proposal: OrderProposal) -> Breach | None:
    """The gross exposure of the intent's venue account (its own venue) with the order."""
    limit = p.account.limit_for(proposal.intent.venue).max_gross
    if limit is None:
        return None
    extra = (proposal.key, proposal.intent.side, proposal.intent.size, proposal.price)
    gross, _ = book.exposure(extra, venue=proposal.intent.venue)
    return _over("account.max_gross", f"account {proposal.intent.venue}'s gross exposure", gross, limit)


def check_account_order(p: PolicySet, proposal: OrderProposal) -> Breach | None:
    limit = p.account.limit_for(proposal.intent.venue).max_order_notional
    if limit is None:
        return None
    what = f"order notional at account {proposal.intent.venue}"
    return _over("account.max_order_notional", what, proposal.notional, limit)


def check_capital(p: PolicySet, book: RiskBook, proposal: OrderProposal) -> Breach | None:
    reserved = p.capital.reserved_for(proposal.intent.strategy_id)
    if reserved is None:
        return None
    used = book.strategy_used(proposal.intent.strategy_id) + proposal.notional
    return _over(
        "capital.reserved", f"strategy {proposal.intent.strategy_id}'s capital in use", used, reserved
    )


def check_order_notional(p: PolicySet, proposal: OrderProposal) -> Breach | None:
    if p.orders.max_notional is None:
        return None
    breach = _over("orders.max_notional", "order notional", proposal.notional, p.orders.max_notional)
    coin = proposal.coin_notional
    if breach is None or coin is None:
        return breach
    # An inverse contract's: the limit is in the quote asset; the coin's worth is said beside it.
    return replace(breach, values=(*breach.values, ("notional_coin", str(coin))))


def check_open_orders(p: PolicySet, book: RiskBook) -> Breach | None:
    if p.orders.max_open is None:
        return None
    return _over("orders.max_open", "open orders", book.orders.count_open() + 1, p.orders.max_open)


def check_price_band(p: PolicySet, proposal: OrderProposal) -> Breach | None:
    band, price = p.orders.price_band, proposal.intent.entry_price
    if band is None or price is None:
        return None
    if proposal.mid is None or proposal.mid <= 0:
        return Breach(
            "orders.price_band", "no mid to check the limit price against", (("price", str(price)),)
        )
    off = abs(price - proposal.mid) / proposal.mid
    if off <= band:
        return None
    return Breach(
        "orders.price_band",
        f"limit price {price} is {off:.4%} from the mid {proposal.mid}, past the band {band}",
        (("price", str(price)), ("mid", str(proposal.mid)), ("value", str(off)), ("limit", str(band))),
    )


def check_rates(p: PolicySet, rates: RateWindow, proposal: OrderProposal) -> list[Breach]:
    window_ns, found = p.rate.window_ms * _NS_PER_MS, []
    at_ns = rate_time(proposal.intent, proposal.now_ns)  # the intent's own time (rates.py)
    for policy, name, limit in (
        ("rate.max_per_venue", f"venue/{proposal.intent.venue}", p.rate.max_per_venue),
        ("rate.max_per_strategy", f"strategy/{proposal.intent.strategy_id}", p.rate.max_per_strategy),
    ):
        if limit is None:
            continue
        count = rates.count(name, at_ns, window_ns) + 1
        if count > limit:
            reason = f"{count} orders of {name} within {p.rate.window_ms} ms would exceed {limit}"
            found.append(
                Breach(policy, reason, (("value", str(count)), ("limit", str(limit))), throttle=True)
            )
    return found


def on_the_grid(intent: ExecutionIntent, facts: InstrumentFacts | None) -> ExecutionIntent | Breach:
    """The intent as its venue takes an order (docs/inspector.md, "Lot and tick"): the size rounded
    down to the lot (never more than asked: what a trader expects of a size), a limit price off
    the tick refused (a moved price is another order than the one chosen). The venue refused
    both after they had passed every policy. Facts not known yet: the intent as it is."""
    if facts is None:
        return intent
    price, tick = intent.entry_price, facts.tick_size
    if price is not None and not is_multiple(price, tick):
        reason = f"limit price {text(price)} is not a multiple of the tick size {text(tick)}"
        return Breach(ORDER_TICK, reason, (("price", text(price)), ("tick_size", text(tick))))
    size = facts.on_lot(intent.size)
    if size <= 0:
        reason = f"size {text(intent.size)} is less than one lot ({text(facts.lot_size)})"
        return Breach(ORDER_LOT, reason, (("size", text(intent.size)), ("lot_size", text(facts.lot_size))))
    return intent if size == intent.size else replace(intent, size=size)


def order_checks(p: PolicySet, book: RiskBook, rates: RateWindow, proposal: OrderProposal) -> list[Breach]:
    """What every order of an intent is checked against, entry or exit."""
    found = [
        check_order_notional(p, proposal),
        check_account_order(p, proposal),
        check_open_orders(p, book),
        check_price_band(p, proposal),
    ]
    return [b for b in found if b is not None] + check_rates(p, rates, proposal)


def entry_checks(
    p: PolicySet,
    book: RiskBook,
    streak: LossStreak,
    proposal: OrderProposal,
    facts: InstrumentFacts | None = None,
) -> list[Breach]:
    """What only a new entry is checked against: its venue, timing, cooldown, position, exposure,
    capital; on a spot market (`facts`), what a sell can deliver."""
    found = [
        check_venue(book, proposal),
        check_listed(book, proposal),
        check_schedule(p, proposal),
        check_cooldown(p, streak, proposal),
        check_capital(p, book, proposal),
        check_account(p, book, proposal),
        check_legacy(book, proposal),
        check_spot(book, facts, proposal),
    ]
    position = check_position(p, book, proposal) + check_exposure(p, book, proposal)
    return [b for b in found if b is not None] + position


def check_venue(book: RiskBook, proposal: OrderProposal) -> Breach | None:
    """No entry at a venue whose positions diverged from ours (the reconciliation's finding, a
    journaled input): the book there is not what it is taken for. Exits are still checked: at
    the venue they can only reduce."""
    venue = proposal.intent.venue
    why = book.venues_down.get(venue)
    if why is None:
        return None
    return Breach("reconcile.position", f"{venue} is stood down: {why}", (("venue", venue),))


def check_listed(book: RiskBook, proposal: OrderProposal) -> Breach | None:
    """No entry in a market its venue delisted (md.{<venue>}.instruments, a journaled input).
    Exits are still checked: a position held there is the operator's to close (a venue may
    trade a delisted market reduce-only for a while, or refuse)."""
    why = book.delisted.get(proposal.key)
    if why is None:
        return None
    intent = proposal.intent
    return Breach(
        "instrument.delisted",
        f"{intent.symbol} is delisted at {intent.venue}: no new entries ({why})",
        (("venue", intent.venue), ("symbol", intent.symbol)),
    )


def check_legacy(book: RiskBook, proposal: OrderProposal) -> Breach | None:
    """No entry against a legacy position of its market: a venue that nets an account's
    positions would take it out of the legacy one, and would check our reduce-only orders
    (protection, exits, CLOSE_ALL's flatten) against the net and refuse them."""
    size = book.legacy.get(proposal.key, (ZERO, None))[0]
    side = proposal.intent.side
    if size == 0 or (size > 0) == (side is Side.BUY):
        return None
    reason = (
        f"a {side.value} entry against the legacy position {size} of {proposal.intent.symbol}: "
        "the venue would net them; close the legacy position first"
    )
    return Breach("legacy.opposite", reason, (("legacy", str(size)), ("size", str(proposal.intent.size))))


def check_spot(book: RiskBook, facts: InstrumentFacts | None, proposal: OrderProposal) -> Breach | None:
    """A spot market cannot be sold short: a sell entry sells what its strategy holds there, less
    its sells already working (spot.py). Exits are checked against the position (exit_checks):
    reduce-only, at the venue they cannot go past it."""
    intent = proposal.intent
    if facts is None or not facts.spot or intent.side is not Side.SELL:
        return None
    can = deliverable(book, proposal.key, intent.strategy_id)
    if intent.size <= can.free:
        return None
    holding, selling, size = text(can.holding), text(can.selling), text(intent.size)
    on_sale = f", {selling} of it on sale already" if can.selling else ""
    reason = (
        f"a spot market cannot be sold short: holding {holding} of {base_asset(intent.symbol)}"
        f" (strategy {intent.strategy_id!r}){on_sale}; a sell of {size} is more"
    )
    values = (
        ("holding", holding),
        ("selling", selling),
        ("deliverable", text(max(can.free, ZERO))),
        ("size", size),
    )
    return Breach(SPOT_SHORT, reason, values)


def exit_checks(book: RiskBook, proposal: OrderProposal) -> list[Breach]:
    """A reduce-only intent must reduce: the other side of the position, at most what is left
    of it after the exits already working."""
    pos = book.positions.size(proposal.key)
    free = abs(pos) - book.orders.pending_exit(proposal.key)
    if pos != 0 and proposal.intent.side.sign != (1 if pos > 0 else -1) and proposal.intent.size <= free:
        return []
    return [
        Breach(
            "exit.reduce_only",
            f"a reduce-only {proposal.intent.side.value} of {proposal.intent.size} "
            f"does not reduce the position {pos}",
            (("position", str(pos)), ("free", str(free)), ("size", str(proposal.intent.size))),
        )
    ]
