"""The sim venue's instruments and its native symbol format.

Spot BTC/USDT is BTCUSDT; the linear perpetual BTC/USDT:USDT is BTCUSDT-PERP (contract size 1,
settled in the quote asset).
"""

from __future__ import annotations

from core.foundations.model import Instrument, InstrumentKind
from venues.sim.config import SimConfig, SymbolConfig

__all__ = ["VENUE", "instruments", "to_native"]

VENUE = "sim"


def to_native(symbol: str) -> str:
    pair, colon, _ = symbol.partition(":")
    return pair.replace("/", "") + ("-PERP" if colon else "")


def _instrument(item: SymbolConfig, config: SimConfig) -> Instrument:
    pair, _, settle = item.symbol.partition(":")
    base, quote = pair.split("/")
    return Instrument(
        venue=VENUE,
        symbol=item.symbol,
        native_symbol=to_native(item.symbol),
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


def instruments(config: SimConfig) -> list[Instrument]:
    return [_instrument(item, config) for item in config.symbols]
