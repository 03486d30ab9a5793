"""The sim venue's instruments: the simulated exchange's (trademesh/core/domain/matching/config.py),
under the venue's name. Spot BTC/USDT is BTCUSDT natively; the linear perpetual BTC/USDT:USDT is
BTCUSDT-PERP (contract size 1, settled in the quote asset); the inverse perpetual BTC/USD:BTC is
BTCUSD-INV (contracts of a face value in USD, settled in BTC).
"""

from __future__ import annotations

from trademesh.core.domain.matching.config import SIM_VENUE, ExchangeConfig, native_symbol
from trademesh.core.domain.matching.config import instruments as exchange_instruments
from trademesh.core.domain.model import Instrument

__all__ = ["VENUE", "instruments", "to_native"]

VENUE = SIM_VENUE
to_native = native_symbol


def instruments(config: ExchangeConfig, venue: str = VENUE) -> list[Instrument]:
    return exchange_instruments(config, venue)
