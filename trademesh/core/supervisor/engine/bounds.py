"""The operator's bounds: what the Supervisor may do, and the deterministic rules' thresholds.

Read from TOML text (the shell reads the file):

    [supervisor]
    pause_drawdown = "0.10"        # pause a strategy whose drawdown reaches this
    resume_drawdown = "0.04"       # resume one it paused once its drawdown is back under this
    min_round_trips = 20           # the hit rate is judged from this many round trips on
    min_hit_rate = "0.35"          # below it (judged): its capital is cut by capital_step
    capital_step = "0.25"          # a capital change is at most this fraction of the capital now
    min_capital = "100"            # never below, never above (quote asset)
    max_capital = "100000"

    [supervisor.policies."loss.max_drawdown"]
    floor = "0.05"                 # tightened to no less than this
    step = "0.01"                  # by at most this at a time

Every bad key or value is named with its path (`supervisor.min_hit_rate: ...`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from trademesh.core.domain.convert import finite_decimal
from trademesh.core.platform.errors import FieldViolation, InvalidArgument
from trademesh.core.platform.parsing import loads_toml

__all__ = ["Bounds", "PolicyBound"]

_DECIMALS = (
    "pause_drawdown",
    "resume_drawdown",
    "min_hit_rate",
    "capital_step",
    "min_capital",
    "max_capital",
)
_FRACTIONS = ("pause_drawdown", "resume_drawdown", "min_hit_rate", "capital_step")


@dataclass(frozen=True)
class PolicyBound:
    floor: Decimal
    step: Decimal


@dataclass(frozen=True)
class Bounds:
    pause_drawdown: Decimal = Decimal("0.10")
    resume_drawdown: Decimal = Decimal("0.04")
    min_round_trips: int = 20
    min_hit_rate: Decimal = Decimal("0.35")
    capital_step: Decimal = Decimal("0.25")
    min_capital: Decimal = Decimal("100")
    max_capital: Decimal = Decimal("100000")
    policies: Mapping[str, PolicyBound] = field(default_factory=dict)

    def __post_init__(self) -> None:
        bad = [
            FieldViolation(f"supervisor.{n}", "a fraction above 0 and at most 1")
            for n in _FRACTIONS
            if not 0 < getattr(self, n) <= 1
        ]
        if self.resume_drawdown >= self.pause_drawdown:
            bad.append(FieldViolation("supervisor.resume_drawdown", "must be below pause_drawdown"))
        if not 0 < self.min_capital <= self.max_capital:
            bad.append(FieldViolation("supervisor.min_capital", "above 0 and at most max_capital"))
        if self.min_round_trips < 1:
            bad.append(FieldViolation("supervisor.min_round_trips", "at least 1"))
        for name, bound in self.policies.items():
            if bound.floor <= 0 or bound.step <= 0:
                bad.append(FieldViolation(f'supervisor.policies."{name}"', "floor and step above 0"))
        if bad:
            raise InvalidArgument(bad)

    @classmethod
    def from_toml(cls, text: str) -> Bounds:
        table = loads_toml(text, "supervisor", "the bounds").get("supervisor", {})
        if not isinstance(table, dict):
            raise InvalidArgument.field("supervisor", "a table of settings, not a value")
        return cls(**_fields(table))


def _fields(table: Mapping[str, Any]) -> dict[str, Any]:
    known = {*_DECIMALS, "min_round_trips", "policies"}
    unknown = sorted(set(table) - known)
    if unknown:
        raise InvalidArgument.field(f"supervisor.{unknown[0]}", f"not a setting ({', '.join(sorted(known))})")
    out: dict[str, Any] = {
        name: _decimal(f"supervisor.{name}", table[name]) for name in _DECIMALS if name in table
    }
    if "min_round_trips" in table:
        trips = table["min_round_trips"]
        if not isinstance(trips, int) or isinstance(trips, bool):
            raise InvalidArgument.field("supervisor.min_round_trips", f"a whole number, not {trips!r}")
        out["min_round_trips"] = trips
    policies = table.get("policies", {})
    if not isinstance(policies, Mapping):
        raise InvalidArgument.field("supervisor.policies", "a table of policy names")
    out["policies"] = {name: _policy(name, each) for name, each in policies.items()}
    return out


def _policy(name: str, table: Any) -> PolicyBound:
    where = f'supervisor.policies."{name}"'
    if not isinstance(table, Mapping) or set(table) != {"floor", "step"}:
        raise InvalidArgument.field(where, "a table of exactly floor and step")
    return PolicyBound(_decimal(f"{where}.floor", table["floor"]), _decimal(f"{where}.step", table["step"]))


def _decimal(where: str, value: Any) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise InvalidArgument.field(where, f"a decimal string, not {value!r}")
    return finite_decimal(where, str(value))
