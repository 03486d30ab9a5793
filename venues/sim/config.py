"""Configuration of the sim venue: frozen, typed, loaded from TOML that may not hold unknown keys.

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

A symbol BASE/QUOTE is spot; BASE/QUOTE:QUOTE is a linear perpetual of contract size 1
(core/foundations/matching/funding.py says how it trades and how its funding is paid). The default symbols
are spot only: a perpetual is there when the config lists one.

Every number has a range (bounds included); a value outside it, a NaN or an infinity is
refused with InvalidArgument naming the key, so a config can neither stop the market (a
step of 0 ms, a NaN volatility) nor swamp the machine (a book 10^8 levels deep). Decimals
are plain decimal strings (or TOML numbers that read as one).

| key | range | default |
|---|---|---|
| seed | 0 .. 2^63-1 | 7 |
| tick_interval_ms | 1 .. 1000 | 10 |
| ticker_interval_ms | 10 .. 60000 | 100 |
| candle_interval_ms | 100 .. 60000 | 1000 |
| history_s | 0 .. 3600 (see venues/sim/venue.py) | 0 |
| maker_fee_rate | -0.01 .. 0.1 (negative: a rebate) | 0.001 |
| taker_fee_rate | 0 .. 0.1 | 0.002 |
| closed_orders_kept | 100 .. 1000000 (see order_manager.py) | 10000 |
| price_band_ratio | 1.01 .. 1000 (see price_band.py) | 5 |
| balances.ASSET | 0 .. 10^18; ASSET is 1-16 of A-Z 0-9 | USDT 1e6, BTC 10, ETH 100, SOL 1000 |
| symbols | 1 .. 100 symbols, each listed once | BTC/USDT, ETH/USDT, SOL/USDT |
| symbol | BASE/QUOTE (spot) or BASE/QUOTE:QUOTE (perpetual), each 1-16 of A-Z 0-9 | required |
| start_price | above 0, at most 10^12; a multiple of tick_size | required |
| tick_size | above 0; start_price is at most 10^12 ticks | required |
| lot_size | above 0, at most 10^9 | required |
| min_size, min_notional | 0 .. 10^12 | 0 |
| volatility_per_sqrt_s | 0 .. 0.01 | 0.0001 |
| trades_per_s | 0 .. 1000 | 20 |
| book_updates_per_s | 0 .. 10000 | 400 |
| book_depth_levels | 1 .. 1000 | 20 |
| level_spacing_ticks | 1 .. 10^6 | 10 |
| maker_size_lots, taker_size_lots | 1 .. 10^12 | 200, 150 |
| funding_rate (perpetuals only) | -0.01 .. 0.01 | 0.0001 |
| funding_interval_s (perpetuals only) | 1 .. 86400 | 28800 (8 h) |
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from core.foundations.config_file import read_toml
from core.foundations.decimals import format_decimal, parse_decimal
from core.foundations.errors import InvalidArgument

__all__ = ["DEMO_MARKET", "SimConfig", "SymbolConfig", "load_config"]

# The demo market `trademesh up` runs (and a backtest by default): the file says why.
DEMO_MARKET = Path(__file__).with_name("demo.toml")

Number = int | float | Decimal
D = Decimal


@dataclass(frozen=True)
class SymbolConfig:
    symbol: str
    start_price: Decimal
    tick_size: Decimal
    lot_size: Decimal
    min_size: Decimal = Decimal(0)
    min_notional: Decimal = Decimal(0)
    # Standard deviation of the mid's log return over one second.
    volatility_per_sqrt_s: float = 0.0001
    # Synthetic takers (market orders) per second.
    trades_per_s: float = 20.0
    # Synthetic maker adds and cancels per second.
    book_updates_per_s: float = 400.0
    # Price levels quoted on each side, and the distance between them.
    book_depth_levels: int = 20
    level_spacing_ticks: int = 10
    # Mean size of a synthetic maker order and of a synthetic taker order, in lots.
    maker_size_lots: int = 200
    taker_size_lots: int = 150
    # Perpetuals only: the rate of each funding payment (positive: longs pay shorts) and the
    # seconds between funding times (the multiples of it since the Unix epoch).
    funding_rate: Decimal = Decimal("0.0001")
    funding_interval_s: int = 28_800

    @property
    def perpetual(self) -> bool:
        """BASE/QUOTE:SETTLE names a perpetual; BASE/QUOTE a spot pair."""
        return ":" in self.symbol


def _default_symbols() -> tuple[SymbolConfig, ...]:
    d = Decimal
    return (
        SymbolConfig("BTC/USDT", d("65000"), d("0.01"), d("0.00001"), d("0.00001"), d("5"),
                     level_spacing_ticks=100, maker_size_lots=5000, taker_size_lots=3000),
        SymbolConfig("ETH/USDT", d("3500"), d("0.01"), d("0.0001"), d("0.0001"), d("5"),
                     level_spacing_ticks=20, maker_size_lots=3000, taker_size_lots=2000),
        SymbolConfig("SOL/USDT", d("150"), d("0.001"), d("0.01"), d("0.01"), d("5"),
                     level_spacing_ticks=20, maker_size_lots=2000, taker_size_lots=1000),
    )  # fmt: skip


def _default_balances() -> tuple[tuple[str, Decimal], ...]:
    return (
        ("USDT", Decimal("1000000")),
        ("BTC", Decimal("10")),
        ("ETH", Decimal("100")),
        ("SOL", Decimal("1000")),
    )


@dataclass(frozen=True)
class SimConfig:
    # Seed of every random process: the same seed gives the same synthetic tape.
    seed: int = 7
    # How often the synthetic market moves and flushes a batch of events.
    tick_interval_ms: int = 10
    ticker_interval_ms: int = 100
    candle_interval_ms: int = 1000
    # Seconds of market the sim plays before it opens, in simulated time, so that GetCandles has
    # history from the start (a strategy warms up at once, a chart is not empty); 0: none.
    history_s: int = 0
    maker_fee_rate: Decimal = Decimal("0.001")
    taker_fee_rate: Decimal = Decimal("0.002")
    # Closed orders kept for GetOrder and client_order_id idempotency, the oldest dropped first.
    closed_orders_kept: int = 10_000
    # A limit price must lie within [reference / ratio, reference * ratio]
    # (core/foundations/matching/price_band.py).
    price_band_ratio: Decimal = Decimal(5)
    balances: tuple[tuple[str, Decimal], ...] = field(default_factory=_default_balances)
    symbols: tuple[SymbolConfig, ...] = field(default_factory=_default_symbols)


# Inclusive bounds of every number (the module docstring's table).
_LIMITS: dict[str, tuple[Number, Number]] = {
    "seed": (0, 2**63 - 1),
    "tick_interval_ms": (1, 1000),
    "ticker_interval_ms": (10, 60_000),
    "candle_interval_ms": (100, 60_000),
    "history_s": (0, 3600),
    "maker_fee_rate": (D("-0.01"), D("0.1")),
    "taker_fee_rate": (D(0), D("0.1")),
    "closed_orders_kept": (100, 1_000_000),
    "price_band_ratio": (D("1.01"), D(1000)),
}
_SYMBOL_LIMITS: dict[str, tuple[Number, Number]] = {
    "min_size": (D(0), D(10**12)),
    "min_notional": (D(0), D(10**12)),
    "volatility_per_sqrt_s": (0.0, 0.01),
    "trades_per_s": (0.0, 1000.0),
    "book_updates_per_s": (0.0, 10_000.0),
    "book_depth_levels": (1, 1000),
    "level_spacing_ticks": (1, 10**6),
    "maker_size_lots": (1, 10**12),
    "taker_size_lots": (1, 10**12),
    "funding_rate": (D("-0.01"), D("0.01")),
    "funding_interval_s": (1, 86_400),
}
_FUNDING_KEYS = ("funding_rate", "funding_interval_s")
# Bounds above zero (zero itself refused).
_POSITIVE_LIMITS: dict[str, Decimal] = {
    "start_price": D(10**12),
    "tick_size": D(10**12),
    "lot_size": D(10**9),
}
_MAX_TICKS = 10**12  # the mid is a float in ticks: finer grids lose its precision
_MAX_SYMBOLS = 100
_MAX_BALANCE = D(10**18)
_ASSET = re.compile(r"[A-Z0-9]{1,16}")


def load_config(path: Path | None) -> SimConfig:
    if path is None:
        return SimConfig()
    raw = read_toml(path, "config")
    symbols = raw.pop("symbols", None)
    balances = raw.pop("balances", None)
    config: SimConfig = _build(SimConfig, raw, "")
    _check_limits(config, _LIMITS, "")
    if symbols is not None:
        config = dataclasses.replace(config, symbols=_symbols(symbols))
    if balances is not None:
        config = dataclasses.replace(config, balances=_balances(balances))
    return config


def _symbols(raw: Any) -> tuple[SymbolConfig, ...]:
    if not isinstance(raw, list) or not 1 <= len(raw) <= _MAX_SYMBOLS:
        raise InvalidArgument.field(
            "symbols", f"name between 1 and {_MAX_SYMBOLS} symbols ([[symbols]] tables)"
        )
    built: list[SymbolConfig] = []
    for index, item in enumerate(raw):
        where = f"symbols[{index}]"
        if not isinstance(item, dict):
            raise InvalidArgument.field(where, "must be a table ([[symbols]])")
        symbol: SymbolConfig = _build(SymbolConfig, item, f"{where}.")
        _check_symbol(symbol, f"{where}.")
        for key in _FUNDING_KEYS:
            if key in item and not symbol.perpetual:
                raise InvalidArgument.field(
                    f"{where}.{key}", "is for perpetuals only (a symbol BASE/QUOTE:QUOTE, e.g. BTC/USDT:USDT)"
                )
        if any(other.symbol == symbol.symbol for other in built):
            raise InvalidArgument.field(f"{where}.symbol", f"{symbol.symbol!r} is listed twice")
        built.append(symbol)
    return tuple(built)


def _balances(raw: Any) -> tuple[tuple[str, Decimal], ...]:
    if not isinstance(raw, dict):
        raise InvalidArgument.field(
            "balances", 'must be a table of ASSET = amount ([balances] USDT = "1000")'
        )
    parsed: list[tuple[str, Decimal]] = []
    for asset, value in raw.items():
        where = f"balances.{asset[:32]}"
        if not _ASSET.fullmatch(asset):
            raise InvalidArgument.field(where, "an asset is 1-16 characters of A-Z 0-9")
        amount = _coerce("Decimal", value, where)
        _check_range(where, amount, D(0), _MAX_BALANCE)
        parsed.append((asset, amount))
    return tuple(parsed)


def _build(kind: type[Any], raw: dict[str, Any], where: str) -> Any:
    fields = {f.name: f for f in dataclasses.fields(kind)}
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        raise InvalidArgument.field(f"{where}{unknown[0]}", f"unknown key; known: {', '.join(fields)}")
    for name, item in fields.items():
        required = item.default is dataclasses.MISSING and item.default_factory is dataclasses.MISSING
        if required and name not in raw:
            raise InvalidArgument.field(f"{where}{name}", "is required")
    values = {name: _coerce(fields[name].type, value, f"{where}{name}") for name, value in raw.items()}
    return kind(**values)


def _coerce(type_name: Any, value: Any, where: str) -> Any:
    if type_name == "Decimal":
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise InvalidArgument.field(where, f"{_shown(value)} is not a decimal number")
        return parse_decimal(where, str(value))
    if type_name == "str":
        if not isinstance(value, str):
            raise InvalidArgument.field(where, f"{_shown(value)} is not a string")
        return value
    if (type_name in ("int", "float") and not isinstance(value, (int, float))) or isinstance(value, bool):
        raise InvalidArgument.field(where, f"{_shown(value)} is not a number")
    if type_name == "int" and not isinstance(value, int):
        raise InvalidArgument.field(where, f"{_shown(value)} is not a whole number")
    if type_name == "float" and not math.isfinite(value):
        raise InvalidArgument.field(where, f"{value!r} is not a finite number")
    return float(value) if type_name == "float" else value


def _check_symbol(item: SymbolConfig, where: str) -> None:
    pair, colon, settle = item.symbol.partition(":")
    base, _, quote = pair.partition("/")
    if not (_ASSET.fullmatch(base) and _ASSET.fullmatch(quote)) or base == quote:
        raise InvalidArgument.field(
            f"{where}symbol",
            f"{item.symbol[:40]!r}: the sim trades spot, BASE/QUOTE, and linear perpetuals, "
            "BASE/QUOTE:QUOTE (1-16 of A-Z 0-9 each)",
        )
    if colon and settle != quote:
        raise InvalidArgument.field(
            f"{where}symbol",
            f"{item.symbol[:40]!r}: the sim's perpetuals are linear, settled in the quote asset "
            f"({base}/{quote}:{quote})",
        )
    for name, high in _POSITIVE_LIMITS.items():
        value = getattr(item, name)
        if not 0 < value <= high:
            raise InvalidArgument.field(
                f"{where}{name}", f"must be more than 0 and at most {_show(high)}, got {_show(value)}"
            )
    if item.start_price % item.tick_size != 0:
        raise InvalidArgument.field(f"{where}start_price", "must be a multiple of tick_size")
    ticks = item.start_price / item.tick_size
    if ticks > _MAX_TICKS:
        raise InvalidArgument.field(
            f"{where}tick_size",
            f"too fine for start_price {_show(item.start_price)}: {_show(ticks)} ticks, at most {_MAX_TICKS}",
        )
    _check_limits(item, _SYMBOL_LIMITS, where)


def _check_limits(item: Any, limits: dict[str, tuple[Number, Number]], where: str) -> None:
    for name, (low, high) in limits.items():
        _check_range(f"{where}{name}", getattr(item, name), low, high)


def _check_range(where: str, value: Number, low: Number, high: Number) -> None:
    if not low <= value <= high:
        raise InvalidArgument.field(
            where, f"must be between {_show(low)} and {_show(high)}, got {_show(value)}"
        )


def _show(value: Number) -> str:
    """A number as a plain decimal (5.0 -> "5", 1e9 -> "1000000000"), capped for echoing."""
    text = format_decimal(Decimal(repr(value)) if isinstance(value, float) else Decimal(value))
    return text if len(text) <= 40 else text[:40] + "..."


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:40] + "..."
