"""What a trade pays the venue: the fee rate of each of its three orders, and the fees of a round
trip to its target and to its stop.

The entry pays the taker rate (market, limit_cross) or the maker rate (limit_join: it rests);
the take-profit, a resting reduce-only limit, the maker rate; the stop, a stop-market, the taker
rate. The rates are the venue's own (its instrument facts), else `UNSTATED_FEE_RATE` a side;
`ValidationConfig.fee_rate`, when set, is every side's rate whatever the venue says (an
account's own tier; 0 counts no fees). A fee is its rate times the price it fills at.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from trademesh.core.advisor.engine.config import EntryMode
from trademesh.core.domain.model import Instrument

__all__ = ["UNSTATED_FEE_RATE", "FeeRates", "fee_rates"]

# A side's rate when the venue states none: a typical spot taker's (0.1%), not "free".
UNSTATED_FEE_RATE = Decimal("0.001")


@dataclass(frozen=True, slots=True)
class FeeRates:
    entry: Decimal
    target: Decimal  # the take-profit's
    stop: Decimal

    def to_target(self, entry: Decimal, target: Decimal) -> Decimal:
        """The fees of a unit bought (sold) at `entry` and sold (bought) back at `target`."""
        return entry * self.entry + target * self.target

    def to_stop(self, entry: Decimal, stop: Decimal) -> Decimal:
        return entry * self.entry + stop * self.stop


def fee_rates(instrument: Instrument | None, entry: EntryMode, override: Decimal | None) -> FeeRates:
    if override is not None:
        return FeeRates(override, override, override)
    maker = None if instrument is None else instrument.maker_fee_rate
    taker = None if instrument is None else instrument.taker_fee_rate
    if taker is None:
        taker = UNSTATED_FEE_RATE
    if maker is None:
        maker = taker
    return FeeRates(maker if entry is EntryMode.LIMIT_JOIN else taker, maker, taker)
