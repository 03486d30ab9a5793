"""A live venue's markets read again in its own pace (LiveConfig.markets_reload_s, default 300 s),
so its exchange's delistings and changed trading rules reach MarketData.ListInstruments without a
restart (docs/venues.md, "Markets reloaded").

Each turn reads what ccxt's `load_markets(reload=True)` reads (the currencies where ccxt reads
them, then the markets) and swaps the result into ccxt's tables in one synchronous step (ccxt's
`set_markets`), then the venue's instruments in one assignment. Not through `load_markets` itself:
every ccxt call awaits the load it has under way, so an order placed during a reload would wait for
the exchange's whole market list, and fail with it. Here the order and stream paths go on with the
last markets loaded until the swap, and with the new ones after it.

What a reload does to the venue's symbols (those it serves: its config's, a replay's, or its
defaults; a market the exchange lists anew is not added):
- a market the exchange no longer lists is **delisted**: left out of the venue's instruments (so
  out of ListInstruments), its orders refused (FAILED_PRECONDITION naming the delisting:
  `not_trading`); its ccxt market is kept in ccxt's tables, so its open streams, and a read or a
  cancel of an order on it, still find it. Listed again by a later reload, it is served again;
- a market listed inactive (ccxt's `active` false) stays listed with `active` false (the contract's
  Instrument: listed, not traded now); its orders are refused too;
- changed trading rules (tick, lot, minimums, fees) are the instruments served from the swap on.

A reload that fails (network, rate limit, a refusal, an answer with no market at all: a glitch,
not the delisting of everything) keeps the last markets and instruments, is logged once (the first
of a run of failures; its end is logged too), counted (`trademesh_venue_market_reloads_total`
{result="failed"}) and tried again at the next turn.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import fields
from typing import Any

from prometheus_client import Counter, Gauge

from trademesh.core.domain.model import Instrument
from trademesh.core.platform.aio.cancellation import cancel_and_wait
from trademesh.core.platform.config.env import VENUE_CREDENTIALS, read_secret, venue_variable
from trademesh.venues.live.convert import safe_message
from trademesh.venues.live.markets import instrument_of
from trademesh.venues.live.spec import LiveSpec

__all__ = ["DELISTED", "RELOADS", "MarketReload"]

log = logging.getLogger(__name__)

RELOADS = Counter(
    "trademesh_venue_market_reloads_total",
    "A live venue's reloads of its exchange's markets (LiveConfig.markets_reload_s), by result: ok or "
    "failed (the last markets kept).",
    ("venue", "result"),
)
DELISTED = Gauge(
    "trademesh_venue_delisted_symbols",
    "The venue's symbols its exchange no longer lists (found by a markets reload; their orders refused).",
    ("venue",),
)


class EmptyAnswer(Exception):
    """The exchange answered no market at all: taken for a glitch, not for everything delisted."""


class MarketReload:
    """The venue's instruments, read again every `every_s` (0: never) from its exchange."""

    def __init__(
        self,
        spec: LiveSpec,
        exchange: Any,
        symbols: Sequence[str],
        every_s: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.spec = spec
        self.exchange = exchange
        self.symbols = tuple(symbols)  # the venue's, in its order
        self.every_s = every_s
        self.delisted: dict[str, float] = {}  # symbol -> when a reload found it gone (clock)
        self.instruments: list[Instrument] = []
        self._last: dict[str, Instrument] = {}  # every symbol's last listing, the delisted ones' too
        self._inactive: frozenset[str] = frozenset()  # listed, active false
        self._set(self._listed())
        self.failures = 0  # failed reloads since the last one that worked
        self._clock = clock
        self._secrets = [read_secret(venue_variable(spec.name, f)) or "" for f in VENUE_CREDENTIALS]
        self._task: asyncio.Task[None] | None = None
        RELOADS.labels(spec.name, "ok")
        RELOADS.labels(spec.name, "failed")
        DELISTED.labels(spec.name).set(0)

    def start(self) -> None:
        if self.every_s > 0 and self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"{self.spec.name}-market-reload")

    async def stop(self) -> None:
        if self._task is not None:
            await cancel_and_wait(self._task)
            self._task = None

    def not_trading(self, symbol: str) -> str | None:
        """Why the venue takes no order on `symbol` now (delisted, or listed inactive); None: it does."""
        if symbol in self.delisted:
            since = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(self.delisted[symbol]))
            return (
                f"{symbol} is delisted at {self.spec.name}: the exchange no longer lists it "
                f"(found by the markets reload of {since}); no new orders"
            )
        if symbol in self._inactive:
            return f"{symbol} is not trading at {self.spec.name} now: the exchange lists it inactive"
        return None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.every_s)
            await self.reload()

    async def reload(self) -> bool:
        """One turn: True when the exchange's markets were read and swapped in."""
        try:
            markets, currencies = await self._read()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # network, rate limit, refusal, glitch: the last markets kept
            self._failed(exc)
            return False
        self._swap(markets, currencies)
        RELOADS.labels(self.spec.name, "ok").inc()
        if self.failures:
            log.info("%s: markets read again after %d failed reloads", self.spec.name, self.failures)
            self.failures = 0
        return True

    async def _read(self) -> tuple[list[Any], Any]:
        """What ccxt's load_markets(reload=True) reads (load_markets_helper), without its swap."""
        exchange, currencies = self.exchange, None
        if exchange.has.get("fetchCurrencies") is True:
            currencies = await exchange.fetch_currencies()
            exchange.options["cachedCurrencies"] = currencies
        try:
            answer = await exchange.fetch_markets()
        finally:
            exchange.options.pop("cachedCurrencies", None)
        markets = list(answer.values()) if isinstance(answer, dict) else list(answer or [])
        if not markets:
            raise EmptyAnswer("the exchange answered no market at all")
        return markets, currencies

    def _swap(self, markets: list[Any], currencies: Any) -> None:
        """ccxt's tables, then the venue's instruments: no await between (one step for every reader)."""
        listed = {market.get("symbol") for market in markets}
        old = self.exchange.markets or {}
        gone = [s for s in self.symbols if s not in listed]
        kept = [old[s] for s in gone if s in old]  # its streams and orders still find its market
        self.exchange.set_markets(markets + kept, currencies)
        now = self._clock()
        before = {i.symbol: i for i in self.instruments}
        self.delisted = {s: self.delisted.get(s, now) for s in gone}
        self._set(self._listed())
        DELISTED.labels(self.spec.name).set(len(self.delisted))
        self._say(before)

    def served(self) -> list[Instrument]:
        """Every symbol the venue streams, listed or delisted (as last listed): its streams stay open."""
        return [self._last[s] for s in self.symbols if s in self._last]

    def _set(self, instruments: list[Instrument]) -> None:
        self.instruments = instruments
        self._last.update((i.symbol, i) for i in instruments)
        self._inactive = frozenset(i.symbol for i in instruments if not i.active)

    def _listed(self) -> list[Instrument]:
        markets = self.exchange.markets or {}
        listed = [s for s in self.symbols if s in markets and s not in self.delisted]
        return [instrument_of(self.spec, markets[s]) for s in listed]

    def _say(self, before: dict[str, Instrument]) -> None:
        name = self.spec.name
        after = {i.symbol: i for i in self.instruments}
        for symbol in self.symbols:
            old, new = before.get(symbol), after.get(symbol)
            if old is not None and new is None:
                log.warning("%s: %s delisted: the exchange lists it no more; orders refused", name, symbol)
            elif old is None and new is not None:
                log.warning("%s: %s listed again by the exchange", name, symbol)
            elif old is not None and new is not None and old != new:
                changed = [f.name for f in fields(Instrument) if getattr(old, f.name) != getattr(new, f.name)]
                log.warning("%s: %s changed at the exchange: %s", name, symbol, ", ".join(changed))

    def _failed(self, exc: Exception) -> None:
        RELOADS.labels(self.spec.name, "failed").inc()
        self.failures += 1
        if self.failures == 1:
            log.warning(
                "%s: reloading markets failed (%s): the last ones kept; tried again every %g s",
                self.spec.name,
                safe_message(exc, self._secrets),
                self.every_s,
            )
        else:
            log.debug("%s: reloading markets failed again (%d in a row)", self.spec.name, self.failures)
