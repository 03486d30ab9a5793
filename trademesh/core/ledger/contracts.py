"""What the ledger needs of an instrument to post its fills: its kind, assets, contract size and
whether it is inverse. The live ledger asks the venue (trademesh.core.ledger.venues); a backtest reads
them from the replayed venue's instruments. Pure: no I/O, so a backtest meets it without gRPC."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from trademesh.common.v1 import common_pb2 as common
from trademesh.core.domain.model import InstrumentKind

__all__ = ["Contract"]

_KINDS = {
    common.INSTRUMENT_KIND_SPOT: InstrumentKind.SPOT,
    common.INSTRUMENT_KIND_PERPETUAL: InstrumentKind.PERPETUAL,
    common.INSTRUMENT_KIND_FUTURE: InstrumentKind.FUTURE,
    common.INSTRUMENT_KIND_OPTION: InstrumentKind.OPTION,
}


@dataclass(frozen=True)
class Contract:
    """What the ledger needs of an instrument to post its fills."""

    kind: InstrumentKind
    base: str
    quote: str
    settle: str
    # Base units per unit of size (linear contracts); an inverse contract's face value in the
    # quote asset (Deribit's BTC-PERPETUAL: 1 USD; OKX's BTC-USD-SWAP: 100 USD).
    contract_size: Decimal = Decimal(1)
    inverse: bool = False  # sized in the quote asset, settled in the base coin

    @classmethod
    def from_symbol(cls, symbol: str) -> Contract:
        """What a canonical (ccxt unified) symbol says: BASE/QUOTE is spot, BASE/QUOTE:SETTLE a
        perpetual, inverse when it settles in its base (used when the venue cannot be asked: an
        inverse contract's face value is then taken as 1 of the quote asset)."""
        pair, _, settle = symbol.partition(":")
        base, _, quote = pair.partition("/")
        kind = InstrumentKind.PERPETUAL if settle else InstrumentKind.SPOT
        return cls(kind, base, quote, settle or quote, inverse=bool(settle) and settle == base != quote)

    @classmethod
    def from_instrument(cls, item: common.Instrument) -> Contract:
        kind = _KINDS.get(item.kind, InstrumentKind.SPOT)
        settle = item.settle_asset or item.quote_asset
        value_asset = item.contract_value_asset or item.base_asset
        inverse = value_asset == item.quote_asset != item.base_asset
        text = item.contract_value if inverse else item.contract_size
        size = Decimal(text or "1")
        return cls(kind, item.base_asset, item.quote_asset, settle, size if size > 0 else Decimal(1), inverse)
