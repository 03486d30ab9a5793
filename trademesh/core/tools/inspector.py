"""Tools over Inspector, the risk governor (trademesh.risk.v1.Inspector): its risk state,
positions with their protective orders, risk events, post-trade audit and policies, all read
only; and close_all, its emergency button, which only a caller whose key holds the
`close_all` permission may press (trademesh.core.tools.upstream checks the key;
trademesh.core.platform.access.scopes says so).
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Literal

from pydantic import Field

from trademesh.common.v1 import common_pb2 as common
from trademesh.core.domain.decimals import format_decimal
from trademesh.core.platform.access.contracts import Principal
from trademesh.core.platform.bus.names import venue_name
from trademesh.core.platform.errors import InvalidArgument, PermissionDenied, shown
from trademesh.core.tools.inputs import all_checked, bounded, strategy_name
from trademesh.core.tools.policy_text import limit_toml
from trademesh.core.tools.render import enum_word, iso_time, margin_mode
from trademesh.core.tools.upstream import Upstream
from trademesh.risk.v1 import inspector_pb2 as rk
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf

__all__ = ["INSPECTOR", "InspectorTools", "Reason", "risk_event"]

INSPECTOR = "trademesh.risk.v1.Inspector"
MAX_EVENTS = 500
MAX_AUDIT = 1000
MAX_REASON = 500
Json = dict[str, Any]
Action = Literal["allow", "block", "throttle", "stand_down", "close_all", "policy_change", "resume", "notice"]
Reason = Annotated[
    str, Field(description="why the book is closed, in a sentence; recorded on the CLOSE_ALL risk event")
]
Why = Annotated[str, Field(description="why, in a sentence; recorded on the risk event it makes")]
Amount = Annotated[str, Field(description="a decimal string in the quote asset, above 0, e.g. 2500")]
PolicyKey = Annotated[str, Field(description="a policy limit's key, e.g. loss.max_drawdown")]
Limit = Annotated[str, Field(description="the limit's new value, a decimal string above 0, e.g. 0.08")]


def _action(value: int) -> str:
    return enum_word(rk.RiskAction.Name, value, "RISK_ACTION_")


def _state(value: int) -> str:
    return enum_word(rk.RiskState.Name, value, "RISK_STATE_")


def _values(values: Any) -> dict[str, str]:
    return {v.name: v.value for v in values}


def _gauge(gauge: rk.Gauge) -> Json:
    return {"value": gauge.value, "limit": gauge.limit or None}


def risk_event(event: rk.RiskEvent) -> Json:
    return {
        "event_id": event.event_id or None,
        "ts_ns": event.ts_ns,
        "time": iso_time(event.ts_ns),
        "action": _action(event.action),
        "policy": event.policy or None,
        "reason": event.reason,
        "values": _values(event.values),
        "intent_id": event.intent_id or None,
        "strategy_id": event.strategy_id or None,
        "venue": event.venue or None,
        "symbol": event.symbol or None,
    }


def _transition(item: rk.Transition) -> Json:
    return {
        "ts_ns": item.ts_ns,
        "time": iso_time(item.ts_ns),
        "before": _state(item.before),
        "after": _state(item.after),
        "reason": item.reason,
    }


def _position(item: rk.PositionView) -> Json:
    return {
        "venue": item.venue,
        "symbol": item.symbol,
        "size": item.size,
        "average_price": item.average_price or None,
        "mark": item.mark or None,
        "unrealized_pnl": item.unrealized_pnl,
        "realized_pnl": item.realized_pnl,
        "legacy": item.legacy,
        "stop_loss": item.stop_loss or None,
        "take_profit": item.take_profit or None,
        # Derivatives (null for spot): as the venue reports them, and |mark - liquidation| / mark.
        "leverage": item.leverage or None,
        "margin_mode": margin_mode(item.margin_mode),
        "margin_ratio": item.margin_ratio or None,
        "liquidation_price": item.liquidation_price or None,
        "liquidation_distance": item.liquidation_distance or None,
        "protective_orders": [
            {
                "client_order_id": p.client_order_id,
                "role": p.role,
                "price": p.price,
                "size": p.size,
                "emulated": p.emulated,
            }
            for p in item.protective
        ],
        "strategies": _values(item.strategies),
    }


def _audited(item: rk.OrderAudit) -> Json:
    return {
        "client_order_id": item.client_order_id,
        "intent_id": item.intent_id,
        "strategy_id": item.strategy_id,
        "venue": item.venue,
        "symbol": item.symbol,
        "side": enum_word(common.Side.Name, item.side, "SIDE_"),
        "role": item.role,
        "status": enum_word(tf.OrderStatus.Name, item.status, "ORDER_STATUS_"),
        "intent_price": item.intent_price or None,
        "average_fill_price": item.average_fill_price or None,
        "slippage_bps": item.slippage_bps or None,
        "size": item.size,
        "filled_size": item.filled_size,
        "fill_rate": item.fill_rate,
        "fills": item.fills,
        "fees": item.fees,
        "time_to_fill_ms": item.time_to_fill_ns / 1e6 if item.time_to_fill_ns else None,
        "placed": iso_time(item.placed_ns),
    }


def _summary(item: rk.AuditSummary) -> Json:
    return {
        "scope": item.scope,
        "orders": item.orders,
        "filled_notional": item.filled_notional,
        "mean_slippage_bps": item.mean_slippage_bps or None,
        "mean_fill_rate": item.mean_fill_rate or None,
        "median_time_to_fill_ms": item.median_time_to_fill_ns / 1e6 if item.median_time_to_fill_ns else None,
        "fees": item.fees,
        "partially_filled": item.partially_filled,
    }


def _venue(venue: str | None) -> str:
    return "" if venue is None or venue == "" else venue_name(venue)


def _strategy(strategy: str | None) -> str:
    return "" if strategy is None else strategy_name(strategy)


def _filters(venue: str | None, strategy: str | None, limit: int, most: int) -> tuple[str, str, int]:
    """(venue, strategy id, limit) checked, every bad one named in one InvalidArgument."""
    checks: list[Callable[[], Any]] = [
        lambda: _venue(venue),
        lambda: _strategy(strategy),
        lambda: bounded("limit", limit, 1, most),
    ]
    found = all_checked(checks)
    return found[0], found[1], found[2]


def _amount(text: str) -> str:
    """A positive decimal amount, as given (a decimal string: money is exact)."""
    try:
        value = Decimal(text)
    except (InvalidOperation, TypeError, ValueError):
        value = Decimal(-1)
    if not value.is_finite() or value <= 0 or len(text) > 40:
        raise InvalidArgument.field("amount", f"{shown(str(text))} is not a decimal amount above 0")
    return format_decimal(value)


def _reason_of(reason: str) -> str:
    if not reason.strip():
        raise InvalidArgument.field("reason", "is required: say why")
    if len(reason) > MAX_REASON:
        raise InvalidArgument.field("reason", f"{len(reason)} characters: at most {MAX_REASON}")
    return reason


class InspectorTools:
    def __init__(self, upstream: Upstream) -> None:
        self._up = upstream

    async def inspector_state(self) -> Json:
        """The risk governor's state now: state (active, throttled, standing_down: no new
        entries, halted: nothing placed until an operator resumes), equity, PnL and fees in the
        quote asset, each measured value against its limit (drawdown and daily drawdown as
        fractions, 0.05 = 5%; loss streak; gross and net exposure; open orders; limit null = no
        limit), the cooldown after a loss, order rates per venue and strategy in the rate
        window, capital reserved and used per strategy, venues stood down by reconciliation,
        and the recent state transitions (oldest first)."""
        got = await self._up.unary(
            INSPECTOR, None, "GetRiskState", rk.GetRiskStateRequest(), rk.GetRiskStateResponse
        )
        return {
            "state": _state(got.state),
            "equity": got.equity,
            "starting_equity": got.starting_equity,
            "peak_equity": got.peak_equity,
            "realized_pnl": got.realized_pnl,
            "unrealized_pnl": got.unrealized_pnl,
            "fees": got.fees,
            "drawdown": _gauge(got.drawdown),
            "daily_drawdown": _gauge(got.daily_drawdown),
            "loss_streak": _gauge(got.loss_streak),
            "gross_exposure": _gauge(got.gross_exposure),
            "net_exposure": _gauge(got.net_exposure),
            "open_orders": _gauge(got.open_orders),
            "cooldown_until": iso_time(got.cooldown_until_ns),
            "rate_window_ms": got.rate_window_ms,
            "rates": [{"scope": r.scope, "orders": r.orders, "limit": r.limit or None} for r in got.rates],
            "capital": [
                {
                    "strategy_id": c.strategy_id,
                    "reserved": c.reserved or None,
                    "used": c.used,
                    "suppressed": c.suppressed,
                }
                for c in got.capital
            ],
            "venues_stood_down": _values(got.venues_stood_down),
            "transitions": [_transition(t) for t in got.transitions],
            "time": iso_time(got.ts_ns),
        }

    async def inspector_positions(self, venue: str | None = None) -> Json:
        """The positions the risk governor knows, optionally of one venue: runtime ones (opened
        by it) and legacy ones (found at its start; reported, never touched). Each with its
        signed size (positive long), average price, mark, PnL, each strategy's share, the
        planned stop-loss and take-profit levels and the protective orders working for it
        (role stop_loss or take_profit, price, size, emulated: held by the inspector rather than
        the venue); a derivatives position also its leverage, margin mode, margin ratio,
        liquidation price and liquidation_distance (|mark - liquidation price| / mark; null for
        spot)."""
        request = rk.ListPositionsRequest(venue=_venue(venue))
        got = await self._up.unary(INSPECTOR, None, "ListPositions", request, rk.ListPositionsResponse)
        return {"positions": [_position(p) for p in got.positions]}

    async def inspector_events(
        self,
        action: Action | None = None,
        policy: str | None = None,
        venue: str | None = None,
        strategy: str | None = None,
        limit: int = 20,
        page_token: str = "",
    ) -> Json:
        """The risk governor's events, newest first: every verdict on an intent (allow, block,
        throttle with the policy breached, its values and the reason), stand-downs, close-alls,
        resumes, policy changes and notices (orders or positions not ours, divergences found by
        reconciliation). Filters: `action`, `policy` (a policy key such as
        position.max_notional, or operator), `venue`, `strategy`. `limit` 1 to 500;
        `next_page_token` continues the list."""
        venue_, strategy_id, size = _filters(venue, strategy, limit, MAX_EVENTS)
        chosen = (
            rk.RiskAction.Value(f"RISK_ACTION_{action.upper()}") if action else rk.RISK_ACTION_UNSPECIFIED
        )
        request = rk.ListRiskEventsRequest(
            action=chosen,
            policy=policy or "",
            venue=venue_,
            strategy_id=strategy_id,
            page_size=size,
            page_token=page_token,
        )
        got = await self._up.unary(INSPECTOR, None, "ListRiskEvents", request, rk.ListRiskEventsResponse)
        return {"events": [risk_event(e) for e in got.events], "next_page_token": got.next_page_token}

    async def inspector_audit(
        self, venue: str | None = None, strategy: str | None = None, limit: int = 50
    ) -> Json:
        """Post-trade audit of the orders the risk governor placed, most recent first (up to
        `limit`, 1 to 1000), optionally of one venue or strategy: per order the slippage against
        the intent's price in basis points (positive is worse for us), fill rate, time to fill,
        fees and fills; and summaries per strategy and per venue (filled notional, mean
        slippage, mean fill rate, median time to fill, fees, partially filled orders)."""
        venue_, strategy_id, most = _filters(venue, strategy, limit, MAX_AUDIT)
        request = rk.GetAuditRequest(venue=venue_, strategy_id=strategy_id, limit=most)
        got = await self._up.unary(INSPECTOR, None, "GetAudit", request, rk.GetAuditResponse)
        return {
            "orders": [_audited(o) for o in got.orders],
            "summaries": [_summary(s) for s in got.summaries],
        }

    async def inspector_policies(self) -> Json:
        """The risk policies in force: each policy key with its limit, the current value and how
        much of the limit is used (used 0.9 = 90% of the way; the ones near 1 are about to
        refuse), and the whole policy set as TOML with the file it came from."""
        got = await self._up.unary(
            INSPECTOR, None, "GetPolicies", rk.GetPoliciesRequest(), rk.GetPoliciesResponse
        )
        return {
            "status": [
                {"key": s.key, "limit": s.limit, "value": s.value or None, "used": s.used or None}
                for s in got.status
            ],
            "toml": got.toml,
            "path": got.path or None,
            "loaded": iso_time(got.loaded_ns),
        }

    async def inspector_resume(self, reason: Why, *, caller: Principal | None) -> Json:
        """Resume the risk governor after a stand-down (or a close-all): intents are taken again.
        Only for an API key holding `trade`. `reason` is required and recorded. Answers the
        state after it and the risk events it made."""
        no_key = "inspector_resume acts for an API key holding 'trade': none given"
        return await self._set_mode(rk.MODE_RESUME, no_key, "is required: say why", reason, caller)

    async def _set_mode(
        self, mode: rk.Mode.ValueType, no_key: str, no_reason: str, reason: str, caller: Principal | None
    ) -> Json:
        if caller is None:
            raise PermissionDenied(no_key)
        if not reason.strip():
            raise InvalidArgument.field("reason", no_reason)
        if len(reason) > MAX_REASON:
            raise InvalidArgument.field("reason", f"{len(reason)} characters: at most {MAX_REASON}")
        request = rk.SetModeRequest(mode=mode, reason=reason)
        got = await self._up.unary(INSPECTOR, None, "SetMode", request, rk.SetModeResponse, caller=caller)
        return {"state": _state(got.state), "events": [risk_event(e) for e in got.events]}

    async def set_capital(
        self, strategy: str, amount: Amount, reason: Why, *, caller: Principal | None
    ) -> Json:
        """Set the capital reserved for one strategy (the inspector's capital.reserved.<strategy>,
        in the quote asset, a decimal string above 0): its entries are sized and checked against
        it from now on; every other policy keeps its current value. Only for an API key holding
        `admin` (a risk policy change). `reason` is required and recorded on the POLICY_CHANGE
        event. Answers each changed key as "key: old -> new"."""
        if caller is None:
            raise PermissionDenied("set_capital acts for an API key holding 'admin': none given")
        checks: list[Callable[[], Any]] = [
            lambda: strategy_name(strategy),
            lambda: _amount(amount),
            lambda: _reason_of(reason),
        ]
        _, exact, _ = all_checked(checks)
        text = f'[capital.reserved]\n"{strategy}" = "{exact}"\n'
        request = rk.UpdatePoliciesRequest(toml=text, reason=reason, over_current=True)
        got = await self._up.unary(
            INSPECTOR, None, "UpdatePolicies", request, rk.UpdatePoliciesResponse, caller=caller
        )
        return {"strategy": strategy, "changes": list(got.changes)}

    async def tighten_policy(
        self, policy: PolicyKey, limit: Limit, reason: Why, *, caller: Principal | None
    ) -> Json:
        """Tighten one risk limit of the inspector: set `policy` (a key of inspector_policies'
        status, e.g. loss.max_drawdown, exposure.max_gross, orders.max_open,
        account.venues.<venue>.max_gross, or capital.reserved.<strategy>) to `limit`, a decimal
        string lower than its current value (or a limit set where it was off); every other
        policy keeps its value. The inspector refuses a change that does not lower a limit
        (raised, turned off, or not a limit). Only for an API key holding `admin`. `reason` is
        required and recorded on the POLICY_CHANGE event. Answers each changed key as
        "key: old -> new"."""
        if caller is None:
            raise PermissionDenied("tighten_policy acts for an API key holding 'admin': none given")
        text, _ = all_checked([lambda: limit_toml(policy, limit), lambda: _reason_of(reason)])
        request = rk.UpdatePoliciesRequest(toml=text, reason=reason, over_current=True, tighten_only=True)
        got = await self._up.unary(
            INSPECTOR, None, "UpdatePolicies", request, rk.UpdatePoliciesResponse, caller=caller
        )
        return {"policy": policy, "changes": list(got.changes)}

    async def close_all(self, reason: Reason, *, caller: Principal | None) -> Json:
        """EMERGENCY: close the whole book. The risk governor cancels every open order at every
        venue and flattens every position it opened with reduce-only market orders, then stays
        halted (nothing is placed) until an operator resumes. Only for an API key holding the
        `close_all` permission; any other key is refused and nothing happens. `reason` is
        required and recorded. Answers the state after it and the risk events it made."""
        no_key = "close_all acts for an API key holding the 'close_all' permission: none given"
        no_reason = "is required: say why the book is closed"
        return await self._set_mode(rk.MODE_CLOSE_ALL, no_key, no_reason, reason, caller)
