"""A backtest's options, from a TOML file and the command line (a flag wins over the file),
declared on BacktestConfig and read by trademesh.core.platform.config.schema: an unknown option, or a
value of the wrong type or out of its range, is refused naming the option (and the file).

Every option has both forms: `--order-latency-ms 20` is `order_latency_ms = 20` in the file
(a number may be given as text there too, as the backtest hub writes it; a list as "a,b").
Times are ISO dates or date-times, UTC unless they say otherwise; a range is [from, to).

    strategies = ["trademesh/core/detector/strategies/trend.toml"]
    venue = "sim"
    symbols = ["BTC/USDT"]
    from = "2026-01-01"
    to = "2026-02-01"
    order_latency_ms = 20      # our order reaching the venue
    report_latency_ms = 20     # the venue's report reaching us
    sample_s = 60              # the equity curve's step
    sim_config = ""            # the sim's instruments, fees and balances (`up`'s demo market when "")
    screens = ""               # the screens a screen-driven strategy follows (the shipped ones when "")
    policies = ""              # the inspector's policies (its shipped defaults when "")
    advisor_config = ""        # the advisor's engine options (its defaults when "")
    timeframe = "1m"           # the advisor's bars and model (as `trademesh up` runs it)
    bars = ""                  # every trade_bars/bars source of the strategies on this timeframe
                               # (e.g. "1m" for a venue's downloaded history; "": each file's own)
    max_notional_share = "0.008"  # the advisor's cap per intent, a share of equity (as in `up`)
    starting_equity = "100000" # the inspector's (its loss limits and sizing count from it)
    llm = "off"                # the advisor's LLM: off, or "recorded" (the live answers replayed)
    latency = "model"          # our orders' arrivals: the model (order_latency_ms), or "recorded"
                               # (each at its live twin's recorded arrival, trademesh.core.backtest.twins)
    out = ""                   # where the report goes (none when "")
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, cast

from trademesh.core.advisor.replay import MESH_MAX_NOTIONAL_SHARE, MESH_TIMEFRAME
from trademesh.core.domain.model import TIMEFRAME_LABELS, Timeframe
from trademesh.core.platform.config.file import read_toml
from trademesh.core.platform.config.schema import (
    Above,
    Items,
    Key,
    OneOf,
    Parse,
    Reading,
    Within,
    check_fields,
    read_value,
)
from trademesh.core.platform.config.schema.words import not_a
from trademesh.core.platform.errors import InvalidArgument, shown

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


def _time(value: Any, path: str) -> int:
    # A TOML date or date-time literal reads as its ISO text.
    return parse_time_ns(str(value), path)


def _path(value: Any, path: str) -> Path | None:
    """A path, or None for "" (the option's default)."""
    if value == "":
        return None
    if not isinstance(value, str):
        raise InvalidArgument.field(path, not_a(value, "a path"))
    return Path(value).expanduser()


def _file(value: Any, path: str) -> Path | None:
    """A file that is there, or None for ""."""
    found = _path(value, path)
    if found is not None and not found.is_file():
        raise InvalidArgument.field(path, f"{shown(value)}: no such file")
    return found


def _directory(value: Any, path: str) -> Path | None:
    """A directory that is there, or None for ""."""
    found = _path(value, path)
    if found is not None and not found.is_dir():
        raise InvalidArgument.field(path, f"{shown(value)}: no such directory")
    return found


def _strategy(value: Any, path: str) -> Path:
    found = _file(value, path)
    if found is None:
        raise InvalidArgument.field(path, "must not be empty")
    return found


def _texts(value: Any, path: str) -> tuple[str, ...]:
    """A list of names, or a flag's "a, b": each stripped, blanks dropped."""
    items: tuple[str, ...] = read_value(tuple[str, ...], value, path, texts=True)
    return tuple(item.strip() for item in items if item.strip())


def _strategies(value: Any, path: str) -> tuple[Path, ...]:
    return tuple(_strategy(text, path) for text in _texts(value, path))


def _timeframe(value: Any, path: str) -> str:
    if not isinstance(value, str):
        raise InvalidArgument.field(path, not_a(value, "a string"))
    Timeframe.from_label(value)
    return value


def _bars(value: Any, path: str) -> str:
    """A timeframe's label, or "" (each strategy's sources on their own)."""
    if value == "":
        return ""
    if not isinstance(value, str) or value not in TIMEFRAME_LABELS:
        known = ", ".join(TIMEFRAME_LABELS)
        raise InvalidArgument.field(path, f"{shown(str(value))} is not a timeframe ({known})")
    return value


@dataclass(frozen=True)
class BacktestConfig:
    strategies: Annotated[tuple[Path, ...], Parse(_strategies), Items(1)]
    start_ns: Annotated[int, Key("from"), Parse(_time)]
    end_ns: Annotated[int, Key("to"), Parse(_time)]
    venue: str = "sim"
    symbols: Annotated[tuple[str, ...], Parse(_texts)] = ()  # none: every symbol the strategies name
    order_latency_ms: Annotated[float, Within(0, 60_000)] = 20.0
    report_latency_ms: Annotated[float, Within(0, 60_000)] = 20.0
    sample_s: Annotated[float, Within(1, 86_400)] = 60.0
    # The replayed exchange's instruments, fees and balances: a sim config (None: up's demo market).
    sim_config: Annotated[Path | None, Parse(_file)] = None
    # The screens of screen-driven strategies (None: the shipped ones, as `trademesh screener`'s).
    screens: Annotated[Path | None, Parse(_directory)] = None
    policies: Annotated[Path | None, Parse(_file)] = None
    advisor_config: Annotated[Path | None, Parse(_file)] = None
    timeframe: Annotated[str, Parse(_timeframe)] = MESH_TIMEFRAME
    # Every trade_bars and bars source of the strategies on this timeframe ("": their files' own).
    bars: Annotated[str, Parse(_bars)] = ""
    max_notional_share: Annotated[Decimal, Above(0, 1)] = MESH_MAX_NOTIONAL_SHARE
    starting_equity: Annotated[Decimal, Above(0)] = Decimal(100_000)
    out: Annotated[Path | None, Parse(_path)] = None
    database_url: str = ""
    # "recorded": the live session's LLM answers (trademesh.core.backtest.answers)
    llm: Annotated[str, OneOf(LLM_MODES)] = "off"
    # "recorded": orders at their live twins' arrivals (trademesh.core.backtest.twins)
    latency: Annotated[str, OneOf(LATENCY_MODES)] = "model"

    def __post_init__(self) -> None:
        check_fields(self)  # a config made in code (the hub, a sweep, a test) as one read from a file
        if self.end_ns <= self.start_ns:
            raise InvalidArgument.field("to", "must be after from")
        Timeframe.from_label(self.timeframe)


def load_backtest_config(path: Path | None, flags: Mapping[str, Any]) -> BacktestConfig:
    """The file's options (if any) with the flags given (None: not given) over them."""
    return backtest_config(read_options(path), flags, None if path is None else str(path))


def read_options(path: Path | None) -> dict[str, Any]:
    """A config file's table (none: empty)."""
    if path is None:
        return {}
    return read_toml(path, "config")


def backtest_config(
    options: Mapping[str, Any], flags: Mapping[str, Any], source: str | None = None
) -> BacktestConfig:
    """The options read from a file (`source`, for errors) with the flags given (None: not
    given) over them."""
    from_file = _options(options, source)
    given = _options({k: v for k, v in flags.items() if v is not None and v != ()}, None)
    reading = Reading()
    config = reading.make(BacktestConfig, {**from_file, **given})
    reading.done()
    return cast(BacktestConfig, config)


def _options(table: Mapping[str, Any], source: str | None) -> dict[str, Any]:
    reading = Reading(source, texts=True)
    values = reading.values(BacktestConfig, table)
    reading.done()
    return values or {}
