"""Which asset a spot fill's fee is charged in: an exchange's rule, declared by its venue
(trademesh/venues/<name>/spec.py, LiveSpec.spot_fee_asset) and handed to the matching engine as data, so a
paper venue's balances move as that exchange's would (docs/paper.md, "The matching model")."""

from __future__ import annotations

import enum

__all__ = ["FeeAsset"]


class FeeAsset(enum.Enum):
    # Every spot fee in the quote asset: the buy pays price x size plus the fee, the sell
    # receives price x size less it (Coinbase; Kraken by default; the sim).
    QUOTE = "quote"
    # The fee is taken from what the fill brings in: a buy receives size less the fee in the
    # base asset (size x rate) and pays price x size; a sell receives price x size less the
    # fee in the quote (Binance without the BNB discount, OKX, Bybit).
    RECEIVED = "received"
