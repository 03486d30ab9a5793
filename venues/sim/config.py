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
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from core.decimals import parse_decimal
from core.errors import InvalidArgument

__all__ = ["SimConfig", "SymbolConfig", "load_config"]


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
    maker_fee_rate: Decimal = Decimal("0.001")
    taker_fee_rate: Decimal = Decimal("0.002")
    balances: tuple[tuple[str, Decimal], ...] = field(default_factory=_default_balances)
    symbols: tuple[SymbolConfig, ...] = field(default_factory=_default_symbols)


def _build(kind: type[Any], raw: dict[str, Any], where: str) -> Any:
    fields = {f.name: f for f in dataclasses.fields(kind)}
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        raise InvalidArgument.field(f"{where}{unknown[0]}", f"unknown key; known: {', '.join(fields)}")
    values: dict[str, Any] = {}
    for name, value in raw.items():
        values[name] = _coerce(fields[name].type, value, f"{where}{name}")
    try:
        return kind(**values)
    except TypeError as exc:
        raise InvalidArgument.field(where.rstrip(".") or "config", str(exc)) from None


def _coerce(type_name: Any, value: Any, where: str) -> Any:
    if type_name == "Decimal":
        return parse_decimal(where, str(value))
    if (type_name in ("int", "float") and not isinstance(value, (int, float))) or isinstance(value, bool):
        raise InvalidArgument.field(where, f"{value!r} is not a number")
    if type_name == "int" and not isinstance(value, int):
        raise InvalidArgument.field(where, f"{value!r} is not a whole number")
    return float(value) if type_name == "float" else value


def load_config(path: Path | None) -> SimConfig:
    if path is None:
        return SimConfig()
    try:
        raw = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise InvalidArgument.field("config", f"cannot read {path}: {exc}") from None
    symbols = raw.pop("symbols", None)
    balances = raw.pop("balances", None)
    config: SimConfig = _build(SimConfig, raw, "")
    if symbols is not None:
        built = tuple(_build(SymbolConfig, item, f"symbols[{i}].") for i, item in enumerate(symbols))
        for index, item in enumerate(built):
            _check_symbol(item, f"symbols[{index}].")
        config = dataclasses.replace(config, symbols=built)
    if balances is not None:
        parsed = tuple((asset, _coerce("Decimal", v, f"balances.{asset}")) for asset, v in balances.items())
        config = dataclasses.replace(config, balances=parsed)
    return config


def _check_symbol(item: SymbolConfig, where: str) -> None:
    if item.symbol.count("/") != 1 or ":" in item.symbol:
        raise InvalidArgument.field(f"{where}symbol", f"{item.symbol!r}: the sim trades spot, BASE/QUOTE")
    for name in ("start_price", "tick_size", "lot_size"):
        if getattr(item, name) <= 0:
            raise InvalidArgument.field(f"{where}{name}", "must be positive")
    if item.start_price % item.tick_size != 0:
        raise InvalidArgument.field(f"{where}start_price", "must be a multiple of tick_size")
    for name in ("book_depth_levels", "level_spacing_ticks", "maker_size_lots", "taker_size_lots"):
        if getattr(item, name) < 1:
            raise InvalidArgument.field(f"{where}{name}", "must be at least 1")
    for name in ("trades_per_s", "book_updates_per_s", "volatility_per_sqrt_s"):
        if getattr(item, name) < 0:
            raise InvalidArgument.field(f"{where}{name}", "must not be negative")
