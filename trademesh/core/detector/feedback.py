"""What a strategy hears back from the inspector, as engine events: its risk state as named
external values (`external` / `external_flag` sources) and each strategy's own positions
(`strategy_position` sources). Pure: the inspector's answers (GetRiskState, ListPositions) in,
the events that changed since the last answers out. The live detector polls the inspector
(trademesh.core.detector.feedback_feed); the backtest reads its inspector core's same views
(trademesh.core.backtest.run); both hand the answers to this one tracker.

The names (docs/detector.md, "Hearing back"):

| name | kind | value |
|---|---|---|
| `inspector.stood_down` | flag | entries are refused: STANDING_DOWN or HALTED |
| `inspector.halted` | flag | HALTED (after CLOSE_ALL, until an operator resumes) |
| `inspector.cooldown` | flag | a cooldown after a losing trade runs |
| `inspector.cooldown_s` | number | the seconds of it left (0 when none) |
| `inspector.drawdown` | number | the drawdown from the equity's peak (0.05 is 5%) |
| `inspector.capital.<strategy>.used` | number | the strategy's capital in use |
| `inspector.capital.<strategy>.reserved`, `.free` | number | its reservation; that less used |
"""

from __future__ import annotations

from collections.abc import Iterable

from trademesh.core.detector.engine.io import ExternalValue, PositionValue
from trademesh.risk.v1 import inspector_pb2 as rk

__all__ = ["FeedbackTracker", "risk_values"]

STOOD_DOWN = "inspector.stood_down"
HALTED = "inspector.halted"
COOLDOWN = "inspector.cooldown"
COOLDOWN_S = "inspector.cooldown_s"
DRAWDOWN = "inspector.drawdown"
_NS = 1_000_000_000
_REFUSING = (rk.RISK_STATE_STANDING_DOWN, rk.RISK_STATE_HALTED)

Held = tuple[float, float | None]  # a strategy's share, the position's average entry price


def _number(text: str) -> float | None:
    return float(text) if text else None


def risk_values(state: rk.GetRiskStateResponse) -> dict[str, float | bool]:
    """The inspector's risk state as named values."""
    left_ns = max(0, state.cooldown_until_ns - state.ts_ns) if state.cooldown_until_ns else 0
    values: dict[str, float | bool] = {
        STOOD_DOWN: state.state in _REFUSING,
        HALTED: state.state == rk.RISK_STATE_HALTED,
        COOLDOWN: left_ns > 0,
        COOLDOWN_S: left_ns / _NS,
        DRAWDOWN: float(state.drawdown.value or 0),
    }
    for use in state.capital:
        prefix = f"inspector.capital.{use.strategy_id}"
        values[f"{prefix}.used"] = float(use.used or 0)
        reserved = _number(use.reserved)
        if reserved is not None:
            values[f"{prefix}.reserved"] = reserved
            values[f"{prefix}.free"] = reserved - float(use.used or 0)
    return values


def _held(positions: Iterable[rk.PositionView]) -> dict[tuple[str, str, str], Held]:
    held: dict[tuple[str, str, str], Held] = {}
    for position in positions:
        if position.legacy:
            continue
        for share in position.strategies:
            held[(share.name, position.venue, position.symbol)] = (
                float(share.value),
                _number(position.average_price),
            )
    return held


class FeedbackTracker:
    """The values last told, so that only a change becomes an event (a strategy's position
    that is gone becomes a flat one)."""

    def __init__(self) -> None:
        self._told: dict[str, float | bool] = {}
        self._held: dict[tuple[str, str, str], Held] = {}
        self.answered = False

    def share(self, strategy: str, venue: str, symbol: str) -> float | None:
        """The strategy's share of its position there as last answered (0: none); None before
        the first answer (whether a screen-driven strategy may retire a patch:
        trademesh.core.detector.screens)."""
        if not self.answered:
            return None
        return self._held.get((strategy, venue, symbol), (0.0, None))[0]

    def events(
        self, state: rk.GetRiskStateResponse, positions: Iterable[rk.PositionView]
    ) -> list[ExternalValue | PositionValue]:
        return self.changes(risk_values(state), _held(positions), state.ts_ns)

    def changes(
        self, values: dict[str, float | bool], held: dict[tuple[str, str, str], Held], at: int
    ) -> list[ExternalValue | PositionValue]:
        """events() of the answers' values already read (risk_values, and each strategy's share
        and entry price by (strategy, venue, symbol)): a backtest reads them from its core."""
        out: list[ExternalValue | PositionValue] = []
        for name, value in sorted(values.items()):
            told = self._told.get(name)
            if told is None or type(told) is not type(value) or told != value:
                self._told[name] = value
                out.append(ExternalValue(name, value, at))
        for key in sorted(set(held) | set(self._held)):
            now = held.get(key, (0.0, None))
            if self._held.get(key) != now:
                out.append(PositionValue(key[0], key[1], key[2], now[0], now[1], at))
        self._held = held
        self.answered = True
        return out
