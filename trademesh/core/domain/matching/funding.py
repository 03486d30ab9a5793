"""The sim's linear perpetuals: how they trade, and the funding their positions pay.

A perpetual is a symbol BASE/QUOTE:QUOTE in the config (e.g. BTC/USDT:USDT): one contract is
one unit of BASE, priced in QUOTE, settled in QUOTE (the settle asset). It trades in the same
book and matching engine as a spot pair, with these differences
(trademesh/core/domain/matching/order_manager.py):
- A fill moves no BASE: it changes the position (signed, long or short, from any side) and
  books its fee and the PnL it realises (when it reduces or flips the position) in the
  settle asset.
- An order locks its worst-case fee in the settle asset (a limit order price * size * the
  dearer fee rate, a market order the cost of walking the book * the taker rate) and, on a
  margined exchange (the sim's, paper's and a backtest's: margin_account.py), its initial
  margin, which the position holds once filled; a position is liquidated when its margin ratio
  reaches 1. Unmargined (SimExchange without MarginTerms), a position holds nothing, and losses
  or funding beyond the free balance leave it negative.
- reduce_only trims an order to the position, as on spot (order_manager.py).

Funding: each perpetual has a rate and an interval (config: funding_rate, funding_interval_s;
default 0.0001 every 8 h). Its funding times are the multiples of the interval since the Unix
epoch, on the exchange's clock, after the exchange opened. At each one, a non-zero position
pays size * mark * rate: amount = -(size * mark * rate) is added to the settle asset's free
balance (a long pays and a short receives when the rate is positive). The mark is the book's
mid, else the last trade, else the only quoted side (trademesh/venues/sim/price_band.reference_ticks);
a market with no price at all pays nothing. The exchange checks for due funding times when
asked (SimVenue asks after every market step); times it missed (the venue fell behind) are
paid late, each with the mark of when it is paid, at most MAX_DUE_AT_ONCE per check.

A backtest may hand a perpetual the rates its venue applied at its funding times, as the
recorder kept them (FundingTerms.recorded): at a funding time with a recorded rate within half
an interval, that rate is paid instead of the config's (docs/backtest-market.md, "Funding").

Each payment is kept (the last FUNDING_KEPT) for ListFundingPayments, with the id
"<native symbol>-<funding time in ms>" (BTCUSDT-PERP-1739952000000): stable, and unique on
the venue, since one account holds one position per symbol.
"""

from __future__ import annotations

import bisect
from collections import deque
from dataclasses import dataclass
from decimal import Decimal

from trademesh.core.domain.model import FundingPayment

__all__ = [
    "FUNDING_KEPT",
    "MAX_DUE_AT_ONCE",
    "FundingHistory",
    "FundingSchedule",
    "FundingTerms",
    "funding_id",
]

FUNDING_KEPT = 100_000
MAX_DUE_AT_ONCE = 100
_NS = 1_000_000_000


@dataclass(frozen=True)
class FundingTerms:
    """A perpetual's funding rate (positive: longs pay shorts) and seconds between funding times;
    in a backtest, the rates a venue applied at its funding times as recorded (oldest first),
    which stand in for `rate` where they cover a funding time (rate_at)."""

    rate: Decimal = Decimal("0.0001")
    interval_s: int = 28_800
    recorded: tuple[tuple[int, Decimal], ...] = ()

    def rate_at(self, ts_ns: int) -> tuple[Decimal, bool]:
        """The rate of the funding time ts_ns, and whether it is a recorded one: the recorded
        rate of the funding time nearest ts_ns within half an interval (a venue's time may be a
        little off the multiple of the interval: 08:00:00.123), else `rate`."""
        if not self.recorded:
            return self.rate, False
        half = self.interval_s * _NS // 2
        at = bisect.bisect_left(self.recorded, ts_ns, key=lambda item: item[0])
        near = [self.recorded[i] for i in (at - 1, at) if 0 <= i < len(self.recorded)]
        best = min(near, key=lambda item: (abs(item[0] - ts_ns), item[0]))
        return (best[1], True) if abs(best[0] - ts_ns) < half else (self.rate, False)


class FundingSchedule:
    """The funding times of one perpetual: every multiple of the interval after `opened_ns`."""

    __slots__ = ("interval_ns", "next_ns")

    def __init__(self, interval_s: int, opened_ns: int) -> None:
        if interval_s <= 0:
            raise ValueError(f"a funding interval is positive, got {interval_s}")
        self.interval_ns = interval_s * _NS
        self.next_ns = (opened_ns // self.interval_ns + 1) * self.interval_ns

    def due(self, now_ns: int) -> list[int]:
        """The funding times up to now not yet returned, oldest first (at most MAX_DUE_AT_ONCE)."""
        times: list[int] = []
        while self.next_ns <= now_ns and len(times) < MAX_DUE_AT_ONCE:
            times.append(self.next_ns)
            self.next_ns += self.interval_ns
        return times


def funding_id(native_symbol: str, ts_ns: int) -> str:
    return f"{native_symbol}-{ts_ns // 1_000_000}"


class FundingHistory:
    """The payments made, oldest first; the last `kept` of them."""

    def __init__(self, kept: int = FUNDING_KEPT) -> None:
        self._payments: deque[FundingPayment] = deque(maxlen=kept)

    def add(self, payment: FundingPayment) -> None:
        self._payments.append(payment)

    def page(self, symbol: str | None, since_ns: int, limit: int) -> list[FundingPayment]:
        """At most `limit` payments at or after since_ns (of one symbol, or all), oldest first."""
        found: list[FundingPayment] = []
        for payment in self._payments:
            if payment.ts_ns >= since_ns and (symbol is None or payment.symbol == symbol):
                found.append(payment)
                if len(found) == limit:
                    break
        return found
