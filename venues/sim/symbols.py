"""The sim venue's instruments and its native symbol format (BTCUSDT for BTC/USDT)."""

from __future__ import annotations

from core.model import Instrument, InstrumentKind
from venues.sim.config import SimConfig, SymbolConfig

__all__ = ["VENUE", "instruments", "to_native"]

VENUE = "sim"


def to_native(symbol: str) -> str:
    return symbol.replace("/", "")


def _instrument(item: SymbolConfig) -> Instrument:
    base, quote = item.symbol.split("/")
    return Instrument(
        venue=VENUE,
        symbol=item.symbol,
        native_symbol=to_native(item.symbol),
        kind=InstrumentKind.SPOT,
        base_asset=base,
        quote_asset=quote,
        settle_asset=quote,
        tick_size=item.tick_size,
        lot_size=item.lot_size,
        min_size=item.min_size,
        min_notional=item.min_notional,
    )


def instruments(config: SimConfig) -> list[Instrument]:
    return [_instrument(item) for item in config.symbols]
