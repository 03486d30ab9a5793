"""Configuration of the sim venue: the simulated exchange's (trademesh/core/domain/matching/config.py:
instruments, fees, balances, price band, closed-order window) and the sim's own synthetic
market beside it, in one TOML file that may not hold unknown keys (read by
trademesh.core.platform.config.schema).

Example (every key optional; `[[symbols]]` replaces the default symbol list):

    seed = 7
    tick_interval_ms = 10
    [balances]
    USDT = "1000000"
    [[symbols]]
    symbol = "BTC/USDT"
    start_price = "65000"
    tick_size = "0.01"
    lot_size = "0.00001"
    trades_per_s = 20
    book_updates_per_s = 200
    [[symbols]]                  # a linear perpetual: BASE/QUOTE:SETTLE, settled in the quote
    symbol = "BTC/USDT:USDT"
    start_price = "65000"
    tick_size = "0.1"
    lot_size = "0.001"
    funding_rate = "0.0001"      # paid by longs to shorts (negative: shorts pay) at each funding time
    funding_interval_s = 28800   # funding times: the multiples of this since the Unix epoch

Perpetuals are margined and liquidated (docs/derivatives.md, "Margin and liquidation"): the top-level
`leverage` (1 .. 125, default 1), `margin_mode` ("cross", the default, or "isolated") and
`liquidation_fee_rate` (default 0.002), and per perpetual `[[symbols.brackets]]` tiers.

A symbol BASE/QUOTE is spot; BASE/QUOTE:QUOTE is a linear perpetual of contract size 1
(trademesh/core/domain/matching/funding.py says how it trades and how its funding is paid);
BASE/QUOTE:BASE an inverse perpetual, sized in contracts of `contract_value` QUOTE and settled
in BASE (trademesh/core/domain/matching/inverse.py). The default symbols
are spot only: a perpetual is there when the config lists one.

Every number has a range; a value outside it, a NaN or an infinity is refused naming the key
and the file. The keys, their ranges and defaults: docs/sim.md, "The sim venue's limits".
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

from trademesh.core.domain.matching.config import ExchangeConfig, SymbolSpec, default_symbols
from trademesh.core.platform.config.file import read_toml
from trademesh.core.platform.config.schema import Above, Items, Unique, Within, load
from trademesh.core.platform.config.schema.words import number
from trademesh.core.platform.errors import FieldViolation, InvalidArgument

__all__ = ["DEMO_MARKET", "SimConfig", "SymbolConfig", "load_config", "only_symbols"]

# The demo market `trademesh up` runs (and a backtest by default): the file says why.
DEMO_MARKET = Path(__file__).with_name("demo.toml")

_MAX_TICKS = 10**12  # the mid is a float in ticks: finer grids lose its precision


@dataclass(frozen=True, kw_only=True)
class SymbolConfig(SymbolSpec):
    """One symbol: the exchange's instrument and the synthetic market that trades it."""

    start_price: Annotated[Decimal, Above(0, 10**12)]
    # Standard deviation of the mid's log return over one second.
    volatility_per_sqrt_s: Annotated[float, Within(0.0, 0.01)] = 0.0001
    # The mid's mean log return per second: a trend (negative: falling), 0 for none. A test
    # drives a leveraged position to its liquidation with it (docs/derivatives.md, "Margin and
    # liquidation").
    drift_per_s: Annotated[float, Within(-0.1, 0.1)] = 0.0
    # Synthetic takers (market orders) per second.
    trades_per_s: Annotated[float, Within(0.0, 1000.0)] = 20.0
    # Synthetic maker adds and cancels per second.
    book_updates_per_s: Annotated[float, Within(0.0, 10_000.0)] = 400.0
    # Price levels quoted on each side, and the distance between them.
    book_depth_levels: Annotated[int, Within(1, 1000)] = 20
    level_spacing_ticks: Annotated[int, Within(1, 10**6)] = 10
    # Mean size of a synthetic maker order and of a synthetic taker order, in lots.
    maker_size_lots: Annotated[int, Within(1, 10**12)] = 200
    taker_size_lots: Annotated[int, Within(1, 10**12)] = 150

    def __post_init__(self) -> None:
        super().__post_init__()
        # The ticks first: a remainder of a quotient past the context's digits would raise.
        ticks = self.start_price / self.tick_size
        if ticks > _MAX_TICKS:
            raise InvalidArgument.field(
                "tick_size",
                f"too fine for start_price {number(self.start_price)}: {number(ticks)} ticks, "
                f"at most {_MAX_TICKS}",
            )
        if self.start_price % self.tick_size != 0:
            raise InvalidArgument([FieldViolation("start_price", "must be a multiple of tick_size")])


# The default symbols' synthetic markets (their instruments are the exchange's defaults).
_DEFAULT_MARKETS: dict[str, dict[str, Any]] = {
    "BTC/USDT": {"start_price": Decimal("65000"), "level_spacing_ticks": 100, "maker_size_lots": 5000,
                 "taker_size_lots": 3000},
    "ETH/USDT": {"start_price": Decimal("3500"), "level_spacing_ticks": 20, "maker_size_lots": 3000,
                 "taker_size_lots": 2000},
    "SOL/USDT": {"start_price": Decimal("150"), "level_spacing_ticks": 20, "maker_size_lots": 2000,
                 "taker_size_lots": 1000},
}  # fmt: skip


def _default_symbols() -> tuple[SymbolConfig, ...]:
    return tuple(SymbolConfig(**_fields(spec), **_DEFAULT_MARKETS[spec.symbol]) for spec in default_symbols())


def _fields(spec: SymbolSpec) -> dict[str, Any]:
    return {item.name: getattr(spec, item.name) for item in dataclasses.fields(spec)}


@dataclass(frozen=True, kw_only=True)
class SimConfig(ExchangeConfig):
    # Seed of every random process: the same seed gives the same synthetic tape.
    seed: Annotated[int, Within(0, 2**63 - 1)] = 7
    # How often the synthetic market moves and flushes a batch of events.
    tick_interval_ms: Annotated[int, Within(1, 1000)] = 10
    ticker_interval_ms: Annotated[int, Within(10, 60_000)] = 100
    candle_interval_ms: Annotated[int, Within(100, 60_000)] = 1000
    # Seconds of market the sim plays before it opens, in simulated time, so that GetCandles has
    # history from the start (a strategy warms up at once, a chart is not empty); 0: none.
    history_s: Annotated[int, Within(0, 3600)] = 0
    symbols: Annotated[tuple[SymbolConfig, ...], Items(1, 100), Unique("symbol")] = field(
        default_factory=_default_symbols
    )


def load_config(path: Path | None, symbols: Sequence[str] | None = None) -> SimConfig:
    """The config at `path` (None: the defaults); with `symbols` (`trademesh venue --symbols`),
    only those of its markets, in that order: a symbol it has no market of is refused, naming it."""
    config = SimConfig() if path is None else load(SimConfig, read_toml(path, "config"), str(path))
    return config if symbols is None else only_symbols(config, symbols)


def only_symbols(config: SimConfig, symbols: Sequence[str]) -> SimConfig:
    """`config` with only the markets of `symbols` (a subset of its own: the sim makes a market of a
    symbol its config describes, and of no other)."""
    if not symbols:
        raise InvalidArgument.field("symbols", "name at least one of the sim's markets")
    markets = {item.symbol: item for item in config.symbols}
    unknown = [s for s in symbols if s not in markets]
    if unknown:
        raise InvalidArgument.field(
            "symbols",
            f"the sim has no market {', '.join(unknown)} (its markets: {', '.join(markets)}; "
            "its config's [[symbols]] adds one)",
        )
    return dataclasses.replace(config, symbols=tuple(markets[s] for s in dict.fromkeys(symbols)))
