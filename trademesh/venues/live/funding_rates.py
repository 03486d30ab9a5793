"""The rate of each live funding payment, from the venue's public funding rate history.

Binance's income and OKX's bills (ccxt fetch_funding_history) say what a position paid, not at
what rate; the venue's public rate history (ccxt fetch_funding_rate_history) says the rate
settled at each funding time. A payment takes the rate of the funding time it belongs to,
matched by time within MATCH_TOLERANCE_MS; no rate there, and it keeps none (never a
neighbour's, never a guess).

Cost: the rates of past funding times never change, so each one read is kept; a payment whose
rate is known costs nothing. Payments without a known rate cost one read per symbol (the
window from the first to the last of them), and a funding time a whole read (one shorter than
a page: nothing cut off) found no rate for is not asked again for MISS_RETRY_S, so a poll every
few seconds does not read again and again for a rate the venue does not have.
"""

from __future__ import annotations

import bisect
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

import ccxt.pro

from trademesh.core.domain.model import FundingPayment
from trademesh.venues.live.normalize import decimal_text
from trademesh.venues.live.spec import FundingRateHistory

__all__ = ["MATCH_TOLERANCE_MS", "MISS_RETRY_S", "FundingRates", "RateBook"]

log = logging.getLogger(__name__)

# The connector's way of calling the venue (retries when rate limited or disconnected, ccxt's
# errors as ours): LiveTrading._call.
Call = Callable[[Callable[[], Awaitable[Any]]], Awaitable[Any]]

# How far a payment's time may be from the funding time whose rate it takes. Both venues stamp
# the two apart by little: Binance's rate history puts some funding times a few ms past the
# hour, and a payment's own stamp is when the venue booked it, at or shortly after the funding
# time. Funding times are an hour apart at the closest (Binance and OKX run 1 h, 4 h and 8 h
# intervals), so five minutes either way is ample for the booking and can never reach the
# funding time before or after: a payment matches its own funding time or none.
MATCH_TOLERANCE_MS = 5 * 60 * 1000
# How long a funding time a complete read found no rate for is left before it is asked again.
MISS_RETRY_S = 600.0


class RateBook:
    """The known rates of one symbol: funding time (ms) -> rate."""

    def __init__(self) -> None:
        self._times: list[int] = []
        self._rates: dict[int, Decimal] = {}

    def add(self, time_ms: int, rate: Decimal) -> None:
        if time_ms not in self._rates:
            bisect.insort(self._times, time_ms)
        self._rates[time_ms] = rate

    def rate_at(self, time_ms: int) -> Decimal | None:
        """The rate of the funding time nearest time_ms within MATCH_TOLERANCE_MS; None if none is."""
        index = bisect.bisect_left(self._times, time_ms)
        near = [
            t for t in self._times[max(index - 1, 0) : index + 1] if abs(t - time_ms) <= MATCH_TOLERANCE_MS
        ]
        if not near:
            return None
        return self._rates[min(near, key=lambda t: abs(t - time_ms))]


@dataclasses.dataclass(eq=False)
class FundingRates:
    """Attaches rates to a venue's funding payments, reading its rate history as little as it can
    (`call`: the venue's, with its retries)."""

    history: FundingRateHistory | None
    exchange: Any
    call: Call
    clock: Callable[[], float] = time.monotonic
    _books: dict[str, RateBook] = dataclasses.field(default_factory=dict, init=False, repr=False)
    # (symbol, payment ms) -> when found missing
    _missed: dict[tuple[str, int], float] = dataclasses.field(default_factory=dict, init=False, repr=False)

    def readable(self) -> bool:
        return self.history is not None and bool(self.exchange.has.get("fetchFundingRateHistory"))

    async def attach(self, payments: list[FundingPayment]) -> list[FundingPayment]:
        """The payments, each without a rate given its funding time's rate where the venue has one."""
        if not self.readable():
            return payments
        wanting: dict[str, list[int]] = {}
        for payment in payments:
            if payment.rate is None and payment.symbol:
                book = self._books.setdefault(payment.symbol, RateBook())
                if book.rate_at(_ms(payment)) is None and not self._recently_missed(payment):
                    wanting.setdefault(payment.symbol, []).append(_ms(payment))
        for symbol, times in wanting.items():
            await self._read(symbol, times)
        return [self._rated(payment) for payment in payments]

    def _rated(self, payment: FundingPayment) -> FundingPayment:
        book = self._books.get(payment.symbol)
        if payment.rate is not None or book is None:
            return payment
        return dataclasses.replace(payment, rate=book.rate_at(_ms(payment)))

    def _recently_missed(self, payment: FundingPayment) -> bool:
        when = self._missed.get((payment.symbol, _ms(payment)))
        return when is not None and self.clock() - when < MISS_RETRY_S

    async def _read(self, symbol: str, times: list[int]) -> None:
        """One read of the symbol's rates over the window of `times` (each widened by the
        tolerance), kept in its book; the times still without a rate after a complete read are
        noted as missed. A venue that refuses the read (it has no such history for the symbol)
        leaves the rates empty; a failure to reach it fails the call, to be asked again."""
        assert self.history is not None
        history = self.history
        start, end = min(times) - MATCH_TOLERANCE_MS, max(times) + MATCH_TOLERANCE_MS

        async def fetch() -> list[dict[str, Any]] | None:
            try:
                raws: list[dict[str, Any]] = await self.exchange.fetch_funding_rate_history(
                    symbol, start, history.page, dict(history.until(end))
                )
            except (ccxt.NotSupported, ccxt.BadSymbol, ccxt.BadRequest) as exc:
                log.warning("no funding rate history for %s: %s", symbol, type(exc).__name__)
                return None
            return raws

        answer = await self.call(fetch)
        complete = answer is None or len(answer) < history.page
        book = self._books.setdefault(symbol, RateBook())
        for raw in answer or []:
            entry = self._entry(symbol, raw)
            if entry is not None:
                book.add(*entry)
        if complete:
            now = self.clock()
            self._missed = {key: when for key, when in self._missed.items() if now - when < MISS_RETRY_S}
            for ms in times:
                if book.rate_at(ms) is None:
                    self._missed[(symbol, ms)] = now

    def _entry(self, symbol: str, raw: dict[str, Any]) -> tuple[int, Decimal] | None:
        """A ccxt funding rate history entry as (funding time in ms, rate), the rate the venue's
        own decimal string (ccxt's fundingRate, a float, where the venue's is absent)."""
        assert self.history is not None
        info = raw.get("info") or {}
        text = decimal_text(info.get(self.history.rate_field) or raw.get("fundingRate"))
        stamp = raw.get("timestamp")
        if raw.get("symbol") not in (None, symbol) or not text or stamp is None:
            return None
        return int(stamp), Decimal(text)


def _ms(payment: FundingPayment) -> int:
    return payment.ts_ns // 1_000_000
