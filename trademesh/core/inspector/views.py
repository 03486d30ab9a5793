"""What the API shows of the core: the risk state with each measure against its limit, the
positions with their protective orders, and each policy's status. Pure reads of the core."""

from __future__ import annotations

from decimal import Decimal

from trademesh.core.domain.decimals import format_optional as dec
from trademesh.core.inspector.convert import STATE_TO_PB, transition_to_pb
from trademesh.core.inspector.engine.actions import OrderRole
from trademesh.core.inspector.engine.core import InspectorCore
from trademesh.core.inspector.engine.positions import Key
from trademesh.core.inspector.margin_views import margin_fields, margin_status
from trademesh.risk.v1 import inspector_pb2 as rk

__all__ = ["policy_status", "positions_view", "risk_state"]

ZERO = Decimal(0)
_TRANSITIONS = 50


def _gauge(value: Decimal | int, limit: Decimal | int | None) -> rk.Gauge:
    return rk.Gauge(value=dec(Decimal(value)), limit="" if limit is None else dec(Decimal(limit)))


def _rates(core: InspectorCore, now_ns: int) -> list[rk.RateUse]:
    rate = core.policies.rate
    out = []
    for scope, count in sorted(core.rate_counts(now_ns).items()):
        limit = rate.max_per_venue if scope.startswith("venue/") else rate.max_per_strategy
        out.append(rk.RateUse(scope=scope, orders=count, limit="" if limit is None else str(limit)))
    return out


def _unrealized(core: InspectorCore) -> Decimal:
    total = ZERO
    for key, position in core.book.positions.positions.items():
        mark = core.book.marks.get(key)
        if position.size and mark is not None:
            total += position.unrealized(mark, core.book.inverse(key), core.book.multiplier(key))
    return total


def risk_state(core: InspectorCore, now_ns: int, stood_down: dict[str, str]) -> rk.GetRiskStateResponse:
    loss, curve = core.policies.loss, core.curve
    gross, net = core.book.exposure()
    cooling = core.streak.cooling_until(loss.cooldown_after_loss_ms)
    strategies = sorted({w.order.strategy_id for w in core.book.orders if w.order.strategy_id})
    strategies += [s for s in core.policies.capital.reserved if s not in strategies]
    answer = rk.GetRiskStateResponse(
        state=STATE_TO_PB[core.state],
        equity=dec(curve.equity),
        starting_equity=dec(curve.start),
        peak_equity=dec(curve.peak),
        drawdown=_gauge(curve.drawdown, loss.max_drawdown),
        daily_drawdown=_gauge(curve.daily_drawdown, loss.max_daily_drawdown),
        loss_streak=_gauge(core.streak.count, loss.max_loss_streak),
        cooldown_until_ns=cooling if cooling is not None and cooling > now_ns else 0,
        gross_exposure=_gauge(gross, core.policies.exposure.max_gross),
        net_exposure=_gauge(net, core.policies.exposure.max_net),
        open_orders=_gauge(core.book.orders.count_open(), core.policies.orders.max_open),
        rates=_rates(core, now_ns),
        rate_window_ms=core.policies.rate.window_ms,
        transitions=[transition_to_pb(t) for t in core.machine.history[-_TRANSITIONS:]],
        realized_pnl=dec(sum((p.realized for p in core.book.positions.positions.values()), ZERO)),
        unrealized_pnl=dec(_unrealized(core)),
        fees=dec(core.fees),
        venues_stood_down=[rk.Value(name=v, value=r) for v, r in sorted(stood_down.items())],
        ts_ns=now_ns,
    )
    for strategy in strategies:
        use = core.capital(strategy)
        answer.capital.append(
            rk.CapitalUse(strategy_id=strategy, reserved=dec(use.reserved), used=dec(use.used),
                          suppressed=dec(use.suppressed))
        )  # fmt: skip
    return answer


def _protective(core: InspectorCore, key: Key, emulated: set[str]) -> list[rk.ProtectiveOrder]:
    out = []
    for role in (OrderRole.STOP_LOSS, OrderRole.TAKE_PROFIT):
        for working in core.book.orders.layers(key, role):  # a layer per part of the position
            order = working.order
            out.append(
                rk.ProtectiveOrder(
                    client_order_id=order.client_order_id, role=role.value,
                    price=dec(order.trigger_price if role is OrderRole.STOP_LOSS else order.price),
                    size=dec(working.remaining), emulated=order.client_order_id in emulated,
                )
            )  # fmt: skip
    return out


def _sellable(core: InspectorCore, key: Key, share: Decimal) -> bool:
    """A strategy's share of at least one lot: dust under a lot is nothing a strategy can close
    (its close is refused), so no strategy is told it holds it (docs/inspector.md, "Dust")."""
    return core.book.lots(key, share) != 0


def positions_view(
    core: InspectorCore, venue: str, legacy: dict[Key, tuple[Decimal, Decimal | None]], emulated: set[str]
) -> list[rk.PositionView]:
    views = []
    for key, position in sorted(core.book.positions.positions.items()):
        if (venue and key[0] != venue) or position.size == 0:
            continue
        mark = core.book.marks.get(key)
        book = core.book
        unrealized = (
            None if mark is None else position.unrealized(mark, book.inverse(key), book.multiplier(key))
        )
        levels = core.protector.levels.get(key)
        shares = {s: v for s, v in core.book.positions.shares(key).items() if _sellable(core, key, v)}
        views.append(
            rk.PositionView(
                venue=key[0], symbol=key[1], size=dec(position.size), average_price=dec(position.avg_price),
                mark=dec(mark), unrealized_pnl=dec(unrealized),
                realized_pnl=dec(position.realized), protective=_protective(core, key, emulated),
                strategies=[rk.Value(name=s, value=dec(v)) for s, v in sorted(shares.items()) if v],
                stop_loss=dec(None if levels is None else levels.stop),
                take_profit=dec(None if levels is None else levels.target), **margin_fields(core, key),
            )
        )  # fmt: skip
    for key, (size, price) in sorted(legacy.items()):
        if not venue or key[0] == venue:
            views.append(
                rk.PositionView(
                    venue=key[0],
                    symbol=key[1],
                    size=dec(size),
                    average_price=dec(price),
                    legacy=True,
                    **margin_fields(core, key),
                )
            )
    return views


def _used(value: Decimal | int | None, limit: Decimal | int | None) -> str:
    if value is None or not limit:
        return ""
    return dec((Decimal(value) / Decimal(limit)).quantize(Decimal("0.0001")))


def _account_rows(core: InspectorCore) -> list[tuple[str, Decimal | int | None, Decimal | int | None]]:
    """account.max_gross of every venue named in the policies or holding a position: each
    account's own gross exposure against its limit (docs/accounts.md)."""
    p = core.policies.account
    held = core.book.keys()  # the (venue, symbol) keys of positions and open entries
    venues = sorted(set(p.venues) | {venue for venue, _ in held})
    rows: list[tuple[str, Decimal | int | None, Decimal | int | None]] = []
    for venue in venues:
        limit = p.limit_for(venue).max_gross
        if limit is not None:
            rows.append((f"account.venues.{venue}.max_gross", limit, core.book.exposure(venue=venue)[0]))
    return rows


def policy_status(core: InspectorCore) -> list[rk.PolicyStatus]:
    """Each policy with a single current value, against its limit (0.9: 90% of the way)."""
    p, curve = core.policies, core.curve
    gross, net = core.book.exposure()
    rows: list[tuple[str, Decimal | int | None, Decimal | int | None]] = [
        ("loss.max_drawdown", p.loss.max_drawdown, curve.drawdown),
        ("loss.max_daily_drawdown", p.loss.max_daily_drawdown, curve.daily_drawdown),
        ("loss.max_loss_streak", p.loss.max_loss_streak, core.streak.count),
        ("exposure.max_gross", p.exposure.max_gross, gross),
        ("exposure.max_net", p.exposure.max_net, net),
        ("orders.max_open", p.orders.max_open, core.book.orders.count_open()),
        ("orders.max_notional", p.orders.max_notional, None),
        ("orders.price_band", p.orders.price_band, None),
        ("position.max_size", p.position.max_size, None),
        ("position.max_notional", p.position.max_notional, None),
        ("rate.max_per_venue", p.rate.max_per_venue, None),
        ("rate.max_per_strategy", p.rate.max_per_strategy, None),
        *_account_rows(core),
    ]
    return [
        rk.PolicyStatus(
            key=key,
            limit=dec(Decimal(limit)),
            value="" if value is None else dec(Decimal(value)),
            used=_used(value, limit),
        )
        for key, limit, value in rows
        if limit is not None
    ] + margin_status(core)
