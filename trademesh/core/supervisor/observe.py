"""An Observation (trademesh.core.supervisor.engine) from the mesh's tools' answers: the detectors'
strategies (list_strategies), the ledger's PnL per strategy (ledger_pnl, its equity curve),
the inspector's state and capital (inspector_state) and its policies' limits
(inspector_policies), Overwatch's regimes (regimes). Pure: the answers in, the observation out.

- A strategy is the first part of its patches' ids (`trend/sim/BTC/USDT`); paused when every one
  of its patches is.
- Its drawdown: how far its cumulative PnL (realised + fees + funding) is below its peak, as a
  fraction of its reserved capital; 0 when it has none reserved (no base to measure against).
- Its round trips and winners: the ledger's (ledger_pnl counts them), summed over the lines of
  its assets; the hit-rate rule judges them once there are enough (docs/supervisor.md).
- A tool that failed gives nothing of its part; the shell does not observe at all without the
  strategies, the ledger's PnL or the inspector's state (trademesh.core.supervisor.app)."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from trademesh.core.supervisor.engine import Observation, StrategyFigures

__all__ = ["observation"]

Json = dict[str, Any]
ZERO = Decimal(0)


def _decimal(text: Any) -> Decimal | None:
    try:
        value = Decimal(str(text))
    except (InvalidOperation, ValueError):
        return None
    return value if value.is_finite() else None


def _strategies(listed: Json) -> dict[str, bool]:
    """strategy -> paused (every patch of it paused)."""
    states: dict[str, list[str]] = {}
    for detector in listed.get("detectors", []):
        for patch in detector.get("patches", []):
            states.setdefault(str(patch.get("patch", "")).split("/", 1)[0], []).append(
                str(patch.get("state"))
            )
    return {name: all(s == "paused" for s in found) for name, found in states.items() if name}


def _capital(state: Json) -> dict[str, Decimal]:
    return _by_key(state.get("capital", []), "strategy_id", "reserved")


def _by_key(rows: list[Json], key: str, field: str) -> dict[str, Decimal]:
    """Each row's decimal `field` under its `key`; a row without either left out."""
    out = {}
    for row in rows:
        value = _decimal(row.get(field))
        if row.get(key) and value is not None:
            out[str(row[key])] = value
    return out


def _drawdown(curve: list[Json], capital: Decimal | None) -> Decimal:
    if not curve or not capital:
        return ZERO
    values = [v for v in (_decimal(p.get("pnl")) for p in curve) if v is not None]
    if not values:
        return ZERO
    peak = max(max(values), ZERO)
    return max(peak - values[-1], ZERO) / capital


def _trips(lines: list[Json]) -> dict[str, tuple[int, int]]:
    """strategy -> (round trips, winners), over its lines (one per asset)."""
    out: dict[str, tuple[int, int]] = {}
    for line in lines:
        name = str(line.get("strategy_id") or "")
        trips, won = _count(line.get("round_trips")), _count(line.get("winners"))
        if name and trips:
            before = out.get(name, (0, 0))
            out[name] = (before[0] + trips, before[1] + min(won, trips))
    return out


def _count(value: Any) -> int:
    return value if isinstance(value, int) and value > 0 else 0


def _limits(policies: Json) -> dict[str, Decimal]:
    return _by_key(policies.get("status", []), "key", "limit")


def observation(now_ns: int, answers: dict[str, Json | None]) -> Observation:
    """`answers`: each tool's answer by name, None when it failed."""
    listed, pnl = answers.get("list_strategies") or {}, answers.get("ledger_pnl") or {}
    state, policies = answers.get("inspector_state") or {}, answers.get("inspector_policies") or {}
    capital = _capital(state)
    by_strategy = {str(s.get("strategy_id")): s for s in pnl.get("strategies", []) if s.get("strategy_id")}
    trips = _trips(pnl.get("strategies", []))
    figures = []
    for name, paused in sorted(_strategies(listed).items()):
        row = by_strategy.get(name, {})
        reserved = capital.get(name)
        figures.append(
            StrategyFigures(
                strategy=name,
                realised_pnl=_decimal(row.get("realised")) or ZERO,
                drawdown=_drawdown(row.get("curve", []), reserved),
                round_trips=trips.get(name, (0, 0))[0],
                winners=trips.get(name, (0, 0))[1],
                capital=reserved,
                paused=paused,
            )
        )
    regimes = {
        f"{m.get('venue')}/{m.get('symbol')}": str(m.get("regime"))
        for m in (answers.get("regimes") or {}).get("markets", [])
    }
    return Observation(now_ns, tuple(figures), regimes, str(state.get("state", "unknown")), _limits(policies))
