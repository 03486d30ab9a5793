"""A backtest's options, from a TOML file and the command line (a flag wins over the file).

Every option has both forms: `--order-latency-ms 20` is `order_latency_ms = 20` in the file.
Times are ISO dates or date-times, UTC unless they say otherwise; a range is [from, to).

    strategies = ["core/detector/strategies/trend.toml"]
    venue = "sim"
    symbols = ["BTC/USDT"]
    from = "2026-01-01"
    to = "2026-02-01"
    order_latency_ms = 20      # our order reaching the venue
    report_latency_ms = 20     # the venue's report reaching us
    sample_s = 60              # the equity curve's step
    sim_config = ""            # the sim's instruments, fees and balances (`up`'s demo market when "")
    policies = ""              # the inspector's policies (its shipped defaults when "")
    advisor_config = ""        # the advisor's engine options (its defaults when "")
    timeframe = "1m"           # the advisor's bars and model (as `trademesh up` runs it)
    max_notional_share = "0.008"  # the advisor's cap per intent, a share of equity (as in `up`)
    starting_equity = "100000" # the inspector's (its loss limits and sizing count from it)
    llm = "off"                # the advisor's LLM: off, or "recorded" (the live answers replayed)
    latency = "model"          # our orders' arrivals: the model (order_latency_ms), or "recorded"
                               # (each at its live twin's recorded arrival, core.backtest.twins)
    out = ""                   # where the report goes (none when "")
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from core.advisor.config import MESH_MAX_NOTIONAL_SHARE, MESH_TIMEFRAME
from core.foundations.config_file import read_toml
from core.foundations.errors import InvalidArgument, shown
from core.foundations.model import Timeframe

__all__ = [
    "LATENCY_MODES",
    "LLM_MODES",
    "BacktestConfig",
    "backtest_config",
    "load_backtest_config",
    "parse_time_ns",
    "read_options",
]

_NS = 1_000_000_000
_LAST_NS = 2**63 - 1
LLM_MODES = ("off", "recorded")
LATENCY_MODES = ("model", "recorded")


@dataclass(frozen=True)
class BacktestConfig:
    strategies: tuple[Path, ...]
    start_ns: int
    end_ns: int
    venue: str = "sim"
    symbols: tuple[str, ...] = ()  # none: every symbol the strategies name
    order_latency_ms: float = 20.0
    report_latency_ms: float = 20.0
    sample_s: float = 60.0
    sim_config: Path | None = None
    policies: Path | None = None
    advisor_config: Path | None = None
    timeframe: str = MESH_TIMEFRAME
    max_notional_share: Decimal = MESH_MAX_NOTIONAL_SHARE
    starting_equity: Decimal = Decimal(100_000)
    out: Path | None = None
    database_url: str = ""
    llm: str = "off"  # "recorded": the live session's LLM answers (core.backtest.answers)
    latency: str = "model"  # "recorded": orders at their live twins' arrivals (core.backtest.twins)

    def __post_init__(self) -> None:
        if not self.strategies:
            raise InvalidArgument.field("strategies", "name at least one strategy file")
        if self.end_ns <= self.start_ns:
            raise InvalidArgument.field("to", "must be after from")
        for name in ("order_latency_ms", "report_latency_ms"):
            if not 0 <= getattr(self, name) <= 60_000:
                raise InvalidArgument.field(name, f"{getattr(self, name)} is out of range: 0 to 60000")
        if not 1 <= self.sample_s <= 86_400:
            raise InvalidArgument.field("sample_s", f"{self.sample_s} is out of range: 1 to 86400")
        Timeframe.from_label(self.timeframe)
        # is_finite first: a NaN compares by raising, not by being out of range.
        share = self.max_notional_share
        if not (share.is_finite() and 0 < share <= 1):
            raise InvalidArgument.field("max_notional_share", f"{share} is out of range: (0, 1]")
        if not (self.starting_equity.is_finite() and self.starting_equity > 0):
            raise InvalidArgument.field("starting_equity", f"{self.starting_equity} must be a number above 0")
        if self.llm not in LLM_MODES:
            raise InvalidArgument.field("llm", f"{shown(self.llm)} is not one of: {', '.join(LLM_MODES)}")
        if self.latency not in LATENCY_MODES:
            raise InvalidArgument.field(
                "latency", f"{shown(self.latency)} is not one of: {', '.join(LATENCY_MODES)}"
            )


def parse_time_ns(text: str, field: str) -> int:
    """An ISO date or date-time (UTC unless it says) as ns since the epoch."""
    try:
        moment = datetime.fromisoformat(text.strip().replace("z", "Z"))
    except ValueError:
        raise InvalidArgument.field(field, f"{shown(text)} is not an ISO date or date-time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    ns = int(moment.timestamp()) * _NS + moment.microsecond * 1000
    if ns > _LAST_NS:
        raise InvalidArgument.field(field, f"{shown(text)} is after 2262 (the last int64 nanosecond)")
    return ns


def _path(value: Any, field: str) -> Path | None:
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise InvalidArgument.field(field, f"{shown(str(value))} is not a path")
    path = Path(value).expanduser()
    if not path.is_file():
        raise InvalidArgument.field(field, f"{shown(value)}: no such file")
    return path


def _strategy(text: str) -> Path:
    path = _path(text, "strategies")
    assert path is not None  # _texts drops empty names
    return path


def _number(value: Any, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise InvalidArgument.field(field, f"{shown(str(value))} is not a number")
    try:
        return float(value)
    except ValueError:
        raise InvalidArgument.field(field, f"{shown(str(value))} is not a number") from None


def _decimal(value: Any, field: str) -> Decimal:
    try:
        return Decimal(str(value))
    except InvalidOperation:
        raise InvalidArgument.field(field, f"{shown(str(value))} is not a decimal") from None


def _texts(value: Any, field: str) -> tuple[str, ...]:
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not all(isinstance(i, str) for i in items):
        raise InvalidArgument.field(field, "must be a list of strings")
    return tuple(i.strip() for i in items if i.strip())


_KEYS = {
    "strategies", "venue", "symbols", "from", "to", "order_latency_ms", "report_latency_ms", "sample_s",
    "sim_config", "policies", "advisor_config", "timeframe", "max_notional_share", "starting_equity", "out",
    "database_url", "llm", "latency",
}  # fmt: skip


def load_backtest_config(path: Path | None, flags: Mapping[str, Any]) -> BacktestConfig:
    """The file's options (if any) with the flags given (None: not given) over them."""
    return backtest_config(read_options(path), flags)


def read_options(path: Path | None) -> dict[str, Any]:
    """A config file's table (none: empty)."""
    if path is None:
        return {}
    return read_toml(path, "config")


def backtest_config(options: Mapping[str, Any], flags: Mapping[str, Any]) -> BacktestConfig:
    """The options read from a file with the flags given (None: not given) over them."""
    raw = dict(options)
    for key in raw:
        if key not in _KEYS:
            raise InvalidArgument.field(key, f"unknown option; options: {', '.join(sorted(_KEYS))}")
    raw.update({k: v for k, v in flags.items() if v is not None and v != ()})
    for key in ("strategies", "from", "to"):
        if key not in raw:
            raise InvalidArgument.field(key, "is required (a flag, or in the config file)")
    return BacktestConfig(
        strategies=tuple(_strategy(p) for p in _texts(raw["strategies"], "strategies")),
        start_ns=parse_time_ns(str(raw["from"]), "from"),
        end_ns=parse_time_ns(str(raw["to"]), "to"),
        venue=str(raw.get("venue", "sim")),
        symbols=_texts(raw.get("symbols", ()), "symbols"),
        order_latency_ms=_number(raw.get("order_latency_ms", 20), "order_latency_ms"),
        report_latency_ms=_number(raw.get("report_latency_ms", 20), "report_latency_ms"),
        sample_s=_number(raw.get("sample_s", 60), "sample_s"),
        sim_config=_path(raw.get("sim_config"), "sim_config"),
        policies=_path(raw.get("policies"), "policies"),
        advisor_config=_path(raw.get("advisor_config"), "advisor_config"),
        timeframe=str(raw.get("timeframe", MESH_TIMEFRAME)),
        max_notional_share=_decimal(
            raw.get("max_notional_share", MESH_MAX_NOTIONAL_SHARE), "max_notional_share"
        ),
        starting_equity=_decimal(raw.get("starting_equity", "100000"), "starting_equity"),
        out=Path(raw["out"]) if raw.get("out") else None,
        database_url=str(raw.get("database_url", "")),
        llm=str(raw.get("llm", "off")),
        latency=str(raw.get("latency", "model")),
    )
