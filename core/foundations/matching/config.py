"""The simulated exchange's configuration: its instruments, fees, balances, price band and
closed-order window (what SimExchange is made of); frozen, typed, its keys declared for
core.foundations.config_schema.

The sim venue's config file (venues/sim/config.py) is this with its synthetic market's keys
beside these, in one table: its classes extend these. A backtest replays a recorded market
through the same exchange and reads a sim config file's exchange part (`load_exchange`), leaving
the synthetic market's keys, which it is told, to the sim.

| key | range | default |
|---|---|---|
| maker_fee_rate | -0.01 .. 0.1 (negative: a rebate) | 0.001 |
| taker_fee_rate | 0 .. 0.1 | 0.002 |
| closed_orders_kept | 100 .. 1000000 (see order_manager.py) | 10000 |
| price_band_ratio | 1.01 .. 1000 (see price_band.py) | 5 |
| balances.ASSET | 0 .. 10^18; ASSET is 1-16 of A-Z 0-9 | USDT 1e6, BTC 10, ETH 100, SOL 1000 |
| symbols | 1 .. 100 symbols, each listed once | BTC/USDT, ETH/USDT, SOL/USDT |
| symbol | BASE/QUOTE (spot) or BASE/QUOTE:QUOTE (perpetual), each 1-16 of A-Z 0-9 | required |
| tick_size | above 0, at most 10^12 | required |
| lot_size | above 0, at most 10^9 | required |
| min_size, min_notional | 0 .. 10^12 | 0 |
| funding_rate (perpetuals only) | -0.01 .. 0.01 | 0.0001 |
| funding_interval_s (perpetuals only) | 1 .. 86400 | 28800 (8 h) |
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field, fields
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

from core.foundations.config_file import read_toml
from core.foundations.config_schema import Above, Items, Parse, Unique, Within, load, read_value
from core.foundations.config_schema.words import not_a
from core.foundations.errors import FieldViolation, InvalidArgument
from core.foundations.model import Instrument, InstrumentKind

__all__ = [
    "SIM_VENUE",
    "ExchangeConfig",
    "SymbolSpec",
    "instruments",
    "load_exchange",
    "native_symbol",
    "parse_balances",
]

# The simulated exchange's venue name: the sim venue's, and the instruments a backtest replays.
SIM_VENUE = "sim"

D = Decimal
_ASSET = re.compile(r"[A-Z0-9]{1,16}")
_FUNDING = ("funding_rate", "funding_interval_s")


def _symbol_problem(symbol: str) -> str | None:
    pair, colon, settle = symbol.partition(":")
    base, _, quote = pair.partition("/")
    if not (_ASSET.fullmatch(base) and _ASSET.fullmatch(quote)) or base == quote:
        return (
            f"{symbol[:40]!r}: the sim trades spot, BASE/QUOTE, and linear perpetuals, "
            "BASE/QUOTE:QUOTE (1-16 of A-Z 0-9 each)"
        )
    if colon and settle != quote:
        return (
            f"{symbol[:40]!r}: the sim's perpetuals are linear, settled in the quote asset "
            f"({base}/{quote}:{quote})"
        )
    return None


@dataclass(frozen=True)
class SymbolSpec:
    """One instrument of the exchange: BASE/QUOTE is spot, BASE/QUOTE:QUOTE a linear perpetual of
    contract size 1 (core/foundations/matching/funding.py says how it trades and pays funding)."""

    symbol: str
    tick_size: Annotated[Decimal, Above(0, 10**12)]
    lot_size: Annotated[Decimal, Above(0, 10**9)]
    min_size: Annotated[Decimal, Within(0, 10**12)] = Decimal(0)
    min_notional: Annotated[Decimal, Within(0, 10**12)] = Decimal(0)
    # Perpetuals only: the rate of each funding payment (positive: longs pay shorts) and the
    # seconds between funding times (the multiples of it since the Unix epoch).
    funding_rate: Annotated[Decimal, Within(D("-0.01"), D("0.01"))] = Decimal("0.0001")
    funding_interval_s: Annotated[int, Within(1, 86_400)] = 28_800

    def __post_init__(self) -> None:
        problem = _symbol_problem(self.symbol)
        if problem is not None:
            raise InvalidArgument.field("symbol", problem)
        defaults = {item.name: item.default for item in fields(SymbolSpec)}
        bad = [
            FieldViolation(key, "is for perpetuals only (a symbol BASE/QUOTE:QUOTE, e.g. BTC/USDT:USDT)")
            for key in _FUNDING
            if not self.perpetual and getattr(self, key) != defaults[key]
        ]
        if bad:
            raise InvalidArgument(bad)

    @property
    def perpetual(self) -> bool:
        """BASE/QUOTE:SETTLE names a perpetual; BASE/QUOTE a spot pair."""
        return ":" in self.symbol


def default_symbols() -> tuple[SymbolSpec, ...]:
    return (
        SymbolSpec("BTC/USDT", D("0.01"), D("0.00001"), D("0.00001"), D("5")),
        SymbolSpec("ETH/USDT", D("0.01"), D("0.0001"), D("0.0001"), D("5")),
        SymbolSpec("SOL/USDT", D("0.001"), D("0.01"), D("0.01"), D("5")),
    )


def default_balances() -> tuple[tuple[str, Decimal], ...]:
    return (("USDT", D("1000000")), ("BTC", D("10")), ("ETH", D("100")), ("SOL", D("1000")))


_BALANCE = Annotated[Decimal, Within(0, 10**18)]


def parse_balances(raw: Any, path: str) -> tuple[tuple[str, Decimal], ...]:
    """`[balances] USDT = "1000"`: an amount per asset."""
    if not isinstance(raw, Mapping):
        raise InvalidArgument.field(path, not_a(raw, 'a table of ASSET = amount ([balances] USDT = "1000")'))
    parsed = []
    for asset, value in raw.items():
        where = f"{path}.{asset[:32]}"
        if not _ASSET.fullmatch(asset):
            raise InvalidArgument.field(where, not_a(asset, "an asset (1-16 of A-Z 0-9)"))
        parsed.append((asset, read_value(_BALANCE, value, where)))
    return tuple(parsed)


@dataclass(frozen=True)
class ExchangeConfig:
    maker_fee_rate: Annotated[Decimal, Within(D("-0.01"), D("0.1"))] = Decimal("0.001")
    taker_fee_rate: Annotated[Decimal, Within(D(0), D("0.1"))] = Decimal("0.002")
    # Closed orders kept for GetOrder and client_order_id idempotency, the oldest dropped first.
    closed_orders_kept: Annotated[int, Within(100, 1_000_000)] = 10_000
    # A limit price must lie within [reference / ratio, reference * ratio] (price_band.py).
    price_band_ratio: Annotated[Decimal, Within(D("1.01"), D(1000))] = Decimal(5)
    balances: Annotated[tuple[tuple[str, Decimal], ...], Parse(parse_balances)] = field(
        default_factory=default_balances
    )
    symbols: Annotated[tuple[SymbolSpec, ...], Items(1, 100), Unique("symbol")] = field(
        default_factory=default_symbols
    )


def load_exchange(
    path: Path, market_keys: Collection[str], market_symbol_keys: Collection[str]
) -> ExchangeConfig:
    """The exchange part of a simulated exchange's config file. The keys of the market that
    drives the exchange (top-level, and in each [[symbols]] table) are its reader's: left here,
    and known (a key that is neither the exchange's nor the market's is refused)."""
    also = {ExchangeConfig: tuple(market_keys), SymbolSpec: tuple(market_symbol_keys)}
    return load(ExchangeConfig, read_toml(path, "config"), str(path), also=also)


def native_symbol(symbol: str) -> str:
    """The exchange's own name of a symbol: spot BTC/USDT is BTCUSDT, the perpetual
    BTC/USDT:USDT is BTCUSDT-PERP."""
    pair, colon, _ = symbol.partition(":")
    return pair.replace("/", "") + ("-PERP" if colon else "")


def _instrument(item: SymbolSpec, config: ExchangeConfig, venue: str) -> Instrument:
    pair, _, settle = item.symbol.partition(":")
    base, quote = pair.split("/")
    return Instrument(
        venue=venue,
        symbol=item.symbol,
        native_symbol=native_symbol(item.symbol),
        kind=InstrumentKind.PERPETUAL if item.perpetual else InstrumentKind.SPOT,
        base_asset=base,
        quote_asset=quote,
        settle_asset=settle or quote,
        tick_size=item.tick_size,
        lot_size=item.lot_size,
        min_size=item.min_size,
        min_notional=item.min_notional,
        maker_fee_rate=config.maker_fee_rate,
        taker_fee_rate=config.taker_fee_rate,
    )


def instruments(config: ExchangeConfig, venue: str = SIM_VENUE) -> list[Instrument]:
    return [_instrument(item, config, venue) for item in config.symbols]
