"""The simulated exchange's configuration: its instruments, fees, balances, price band and
closed-order window (what SimExchange is made of); frozen, typed, its keys declared for
trademesh.core.platform.config.schema.

The sim venue's config file (trademesh/venues/sim/config.py) is this with its synthetic market's keys
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
| symbol | BASE/QUOTE spot, BASE/QUOTE:QUOTE or BASE/QUOTE:BASE perpetual, 1-16 of A-Z 0-9 each | required |
| tick_size | above 0, at most 10^12 | required |
| lot_size | above 0, at most 10^9 | required |
| min_size, min_notional | 0 .. 10^12 | 0 |
| funding_rate (perpetuals only) | -0.01 .. 0.01 | 0.0001 |
| funding_interval_s (perpetuals only) | 1 .. 86400 | 28800 (8 h) |
| contract_value (inverse perpetuals only: a contract's face value in QUOTE) | above 0, at most 10^9 | 1 |
| leverage (every perpetual's at the start; SetLeverage changes it) | 1 .. 125 | 1 |
| margin_mode | "cross" or "isolated" | "cross" |
| liquidation_fee_rate | 0 .. 0.1 | 0.002 |
| [[symbols.brackets]] (perpetuals: notional_cap, max_leverage, maintenance_margin_rate) | 0..20 | |

Perpetuals are margined and liquidated (margin_account.py; docs/derivatives.md, "Margin and
liquidation"). The default leverage, 1x cross, keeps a config written before margin trading
safe: every position is fully funded by its notional, and a long is never liquidated.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field, fields
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

from trademesh.core.domain.matching.margin import Brackets
from trademesh.core.domain.matching.margin_account import MarginTerms
from trademesh.core.domain.model import Instrument, InstrumentKind, MarginMode
from trademesh.core.platform.config.file import read_toml
from trademesh.core.platform.config.schema import Above, Items, Parse, Unique, Within, load, read_value
from trademesh.core.platform.config.schema.words import not_a
from trademesh.core.platform.errors import FieldViolation, InvalidArgument

__all__ = [
    "SIM_VENUE",
    "BracketSpec",
    "ExchangeConfig",
    "SymbolSpec",
    "instruments",
    "load_exchange",
    "margin_terms",
    "native_symbol",
    "parse_balances",
]

# The simulated exchange's venue name: the sim venue's, and the instruments a backtest replays.
SIM_VENUE = "sim"

D = Decimal
_ASSET = re.compile(r"[A-Z0-9]{1,16}")
_FUNDING = ("funding_rate", "funding_interval_s", "brackets")
_INVERSE_ONLY = ("contract_value",)


def _symbol_problem(symbol: str) -> str | None:
    pair, colon, settle = symbol.partition(":")
    base, _, quote = pair.partition("/")
    if not (_ASSET.fullmatch(base) and _ASSET.fullmatch(quote)) or base == quote:
        return (
            f"{symbol[:40]!r}: the sim trades spot, BASE/QUOTE, linear perpetuals, "
            "BASE/QUOTE:QUOTE, and inverse perpetuals, BASE/QUOTE:BASE (1-16 of A-Z 0-9 each)"
        )
    if colon and settle not in (quote, base):
        return (
            f"{symbol[:40]!r}: the sim's perpetuals settle in the quote asset (linear, "
            f"{base}/{quote}:{quote}) or in the base (inverse, {base}/{quote}:{base})"
        )
    return None


@dataclass(frozen=True)
class BracketSpec:
    """One tier of a perpetual's leverage brackets (margin.Brackets): notionals up to
    `notional_cap` (in the settle asset; 0 for the last tier, which has none) take at most
    `max_leverage` and keep `maintenance_margin_rate` of their notional."""

    notional_cap: Annotated[Decimal, Within(0, 10**15)]
    max_leverage: Annotated[Decimal, Within(1, 125)]
    maintenance_margin_rate: Annotated[Decimal, Within(0, D("0.99"))]


@dataclass(frozen=True)
class SymbolSpec:
    """One instrument of the exchange: BASE/QUOTE is spot, BASE/QUOTE:QUOTE a linear perpetual of
    contract size 1 (trademesh/core/domain/matching/funding.py says how it trades and pays funding)."""

    symbol: str
    tick_size: Annotated[Decimal, Above(0, 10**12)]
    lot_size: Annotated[Decimal, Above(0, 10**9)]
    min_size: Annotated[Decimal, Within(0, 10**12)] = Decimal(0)
    min_notional: Annotated[Decimal, Within(0, 10**12)] = Decimal(0)
    # Perpetuals only: the rate of each funding payment (positive: longs pay shorts) and the
    # seconds between funding times (the multiples of it since the Unix epoch).
    funding_rate: Annotated[Decimal, Within(D("-0.01"), D("0.01"))] = Decimal("0.0001")
    funding_interval_s: Annotated[int, Within(1, 86_400)] = 28_800
    # Inverse perpetuals only: a contract's face value in the quote asset (Deribit's BTC: 10 USD).
    contract_value: Annotated[Decimal, Above(0, 10**9)] = Decimal(1)
    # Perpetuals only: the leverage brackets, lowest tier first (empty: the default, margin.py).
    brackets: Annotated[tuple[BracketSpec, ...], Items(0, 20)] = ()

    def __post_init__(self) -> None:
        problem = _symbol_problem(self.symbol)
        if problem is not None:
            raise InvalidArgument.field("symbol", problem)
        if self.brackets:
            self.tiers()
        defaults = {item.name: item.default for item in fields(SymbolSpec)}
        bad = [
            FieldViolation(key, "is for perpetuals only (a symbol BASE/QUOTE:QUOTE, e.g. BTC/USDT:USDT)")
            for key in _FUNDING
            if not self.perpetual and getattr(self, key) != defaults[key]
        ]
        bad += [
            FieldViolation(key, "is for inverse perpetuals only (a symbol BASE/QUOTE:BASE, e.g. BTC/USD:BTC)")
            for key in _INVERSE_ONLY
            if not self.inverse and getattr(self, key) != defaults[key]
        ]
        if bad:
            raise InvalidArgument(bad)

    def tiers(self) -> Brackets | None:
        """The brackets the config gives (None: the default); InvalidArgument when they are not
        tiers (caps rising, the last 0)."""
        if not self.brackets:
            return None
        return Brackets(
            [(t.notional_cap or None, t.max_leverage, t.maintenance_margin_rate) for t in self.brackets]
        )

    @property
    def perpetual(self) -> bool:
        """BASE/QUOTE:SETTLE names a perpetual; BASE/QUOTE a spot pair."""
        return ":" in self.symbol

    @property
    def inverse(self) -> bool:
        """BASE/QUOTE:BASE: an inverse perpetual, sized in contracts of `contract_value` QUOTE."""
        pair, colon, settle = self.symbol.partition(":")
        return bool(colon) and settle == pair.partition("/")[0]


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
    # Every perpetual's leverage and margin mode at the start, and the fee a liquidation pays.
    leverage: Annotated[Decimal, Within(1, 125)] = Decimal(1)
    margin_mode: MarginMode = MarginMode.CROSS
    liquidation_fee_rate: Annotated[Decimal, Within(0, D("0.1"))] = Decimal("0.002")


def margin_terms(config: ExchangeConfig) -> MarginTerms:
    """How the exchange margins its perpetuals (margin_account.py)."""
    brackets = {item.symbol: item.tiers() for item in config.symbols}
    return MarginTerms(
        leverage=config.leverage,
        mode=config.margin_mode,
        liquidation_fee_rate=config.liquidation_fee_rate,
        brackets={symbol: tiers for symbol, tiers in brackets.items() if tiers is not None},
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
    BTC/USDT:USDT is BTCUSDT-PERP, the inverse perpetual BTC/USD:BTC is BTCUSD-INV."""
    pair, colon, settle = symbol.partition(":")
    if colon and settle == pair.partition("/")[0]:
        return pair.replace("/", "") + "-INV"  # inverse: BTC/USD:BTC is BTCUSD-INV
    return pair.replace("/", "") + ("-PERP" if colon else "")


def _instrument(item: SymbolSpec, config: ExchangeConfig, venue: str) -> Instrument:
    pair, _, settle = item.symbol.partition(":")
    base, quote = pair.split("/")
    # An inverse contract is worth its face in the quote asset, whatever the price (model.Instrument).
    value = (Decimal(0), item.contract_value, quote) if item.inverse else (Decimal(1), Decimal(1), "")
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
        contract_size=value[0],
        contract_value=value[1],
        contract_value_asset=value[2],
        maker_fee_rate=config.maker_fee_rate,
        taker_fee_rate=config.taker_fee_rate,
    )


def instruments(config: ExchangeConfig, venue: str = SIM_VENUE) -> list[Instrument]:
    return [_instrument(item, config, venue) for item in config.symbols]
