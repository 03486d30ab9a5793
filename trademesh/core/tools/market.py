"""The read-only tools over the mesh's market and account data: what an agent (through the
gateway's MCP server) and the advisor's context stage look at. One implementation serves both;
none places or cancels orders.

Each tool checks its arguments first (errors name the bad value), finds the instance through
the resolver and answers a JSON-able dict; failures are trademesh.core.platform.errors (the
gateway's MCP server turns them into tool errors the model reads; the advisor into a context it
gathers without). The docstrings are what a model reads.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncGenerator, Sequence
from typing import Any

from trademesh.admin.v1 import admin_pb2 as admin
from trademesh.core.domain.accounts import account_of, exchange_of
from trademesh.core.domain.model import Timeframe
from trademesh.core.platform.bus.names import venue_name
from trademesh.core.platform.errors import InvalidArgument, TrademeshError
from trademesh.core.tools import render
from trademesh.core.tools.bars import BarStore
from trademesh.core.tools.book import book_events, book_top, book_tops
from trademesh.core.tools.gaps import GapStore
from trademesh.core.tools.inputs import (
    MAX_NS,
    TimeframeText,
    account_venue,
    all_checked,
    bounded,
    canonical_symbol,
    live_venue,
    optional_symbol,
    strategy_name,
    timeframe_label,
)
from trademesh.core.tools.signals import SignalStore
from trademesh.core.tools.upstream import Upstream
from trademesh.marketdata.v1 import marketdata_pb2 as md
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf

__all__ = ["ADMIN", "MARKETDATA", "TRADEFLOW", "MarketTools"]

ADMIN = "trademesh.admin.v1.Admin"
MARKETDATA = "trademesh.marketdata.v1.MarketData"
TRADEFLOW = "trademesh.tradeflow.v1.TradeFlow"
MAX_BARS = 1000
MAX_DEPTH = 100
# Symbols one market_prices call may name (none: every instrument the venue lists).
MAX_PRICE_SYMBOLS = 1000

Json = dict[str, Any]


class MarketTools:
    def __init__(self, upstream: Upstream, bars: BarStore, signals: SignalStore, gaps: GapStore) -> None:
        self._up = upstream
        self._bars = bars
        self._signals = signals
        self._gaps = gaps

    async def list_venues(self) -> Json:
        """The venues live in the mesh now (registered with the gateway). Their names are the
        `venue` argument of the other tools."""
        return {"venues": self._up.names(ADMIN)}

    async def venue_status(self, venue: str | None = None) -> Json:
        """Connection status of one venue, or of every live venue when `venue` is omitted: state
        (running, degraded, ...), and per upstream stream (symbol and channel) its state
        (connected, ...), events per second, milliseconds since its last event, reconnects,
        `poll_interval_ms` where the venue streams none of it and it is read by REST (a perpetual's
        funding rate on some venues; null: streamed); and whether it holds stop orders natively
        (`stop_orders`), whether it amends orders in place (`amend`: native or cancel_replace) and
        how its account stream learns of changes (`account_feed`: push or poll)."""
        live = self._up.names(ADMIN)
        if venue is not None:
            return await self._status(live_venue(venue, live))
        # Together, so one venue slow to answer costs one deadline, not one per venue.
        return {"venues": list(await asyncio.gather(*(self._status_or_error(name) for name in live)))}

    async def instruments(self, venue: str) -> Json:
        """The instruments a venue trades: canonical symbol (BTC/USDT), the venue's native symbol,
        kind, assets, tick and lot sizes, minimum size and notional (decimal strings)."""
        venue = live_venue(venue, self._up.names(MARKETDATA))
        answer = await self._up.unary(
            MARKETDATA, venue, "ListInstruments", md.ListInstrumentsRequest(), md.ListInstrumentsResponse
        )
        return {"venue": venue, "instruments": [render.instrument(i) for i in answer.instruments]}

    async def market_prices(self, venue: str, symbols: list[str] | None = None) -> Json:
        """Every instrument's latest price on a venue at once (MarketData GetTickers: one call),
        or only the `symbols` given (canonical, at most 1000): per symbol the last trade price,
        best bid and ask with their sizes, the venue's 24h volume in the quote and in the base
        asset, its price 24 hours ago (open_24h: the reference of its 24h change) (decimal
        strings; null where the venue does not say), and the ticker's time (ISO and
        ns; null when the venue does not say). In the venue's instrument order; an instrument
        without a market yet is left out. A venue that cannot answer all at once says so."""
        venue = live_venue(venue, self._up.names(MARKETDATA))
        wanted = list(symbols or ())
        if len(wanted) > MAX_PRICE_SYMBOLS:
            raise InvalidArgument.field("symbols", f"{len(wanted)} symbols; at most {MAX_PRICE_SYMBOLS}")
        checks = [functools.partial(_listed_symbol, i, s) for i, s in enumerate(wanted)]
        request = md.GetTickersRequest(symbols=all_checked(checks))
        answer = await self._up.unary(MARKETDATA, venue, "GetTickers", request, md.GetTickersResponse)
        return {"venue": venue, "prices": [render.price(t) for t in answer.tickers]}

    async def latest_bars(
        self, venue: str, symbol: str, timeframe: TimeframeText = "1m", limit: int = 20
    ) -> Json:
        """The latest closed OHLCV bars of a symbol on a venue, oldest first, as recorded by the bar
        aggregator: open time (ISO and ns), open, high, low, close, volume, quote volume, VWAP
        (decimal strings), trade count, and whether the bar was repaired from venue candles.
        `limit` is 1 to 1000."""
        venue = venue_name(venue)  # not only live venues: bars outlive a venue's process
        symbol = canonical_symbol(symbol)
        timeframe = timeframe_label(timeframe)
        limit = bounded("limit", limit, 1, MAX_BARS)
        bars = await self._bars.latest(venue, symbol, timeframe, limit)
        return {"venue": venue, "symbol": symbol, "timeframe": timeframe, "bars": bars}

    async def gap_markers(
        self, venue: str, symbol: str, timeframe: TimeframeText = "1m", since_ns: int = 0, limit: int = 20
    ) -> Json:
        """Gap markers of a symbol's trades on a venue, newest first: spans where trades may be
        missing, so bars over them may be short. Each has its time (ISO and ns), `start_ns` and
        `end_ns`, the `timeframe` bars it touches, the reason, and `open`: true until a bar
        repaired from the venue's candles covers its last bar (repaired gaps are false). Those
        written at or after `since_ns` (ns since the epoch); `limit` is 1 to 1000. From the
        recorder."""
        venue = venue_name(venue)  # not only live venues: notices outlive a venue's process
        symbol = canonical_symbol(symbol)
        frame = Timeframe.from_label(timeframe)
        since_ns = bounded("since_ns", since_ns, 0, MAX_NS)
        limit = bounded("limit", limit, 1, MAX_BARS)
        gaps = await self._gaps.markers(venue, symbol, frame, since_ns, limit)
        return {
            "venue": venue,
            "symbol": symbol,
            "timeframe": frame.label,
            "open": sum(1 for g in gaps if g["open"]),
            "gaps": gaps,
        }

    async def recent_signals(
        self, strategy: str | None = None, symbol: str | None = None, limit: int = 20
    ) -> Json:
        """The detector's latest signals, newest first (all strategies and symbols, or one):
        time, strategy, venue, symbol, direction (long, short, flat), conviction in [0, 1],
        score and threshold (decimal strings), and every rule with its weight, the value it saw
        and whether it fired. `limit` is 1 to 1000. From the recorder."""
        strategy_id = "" if strategy is None else strategy_name(strategy)
        symbol = optional_symbol(symbol)
        limit = bounded("limit", limit, 1, MAX_BARS)
        return {"signals": await self._signals.recent(strategy_id, symbol, limit)}

    async def order_book_top(self, venue: str, symbol: str, depth: int = 5) -> Json:
        """The best `depth` (1 to 100) bid and ask levels of a symbol's L2 book on a venue, best
        first, as price and size decimal strings, with the spread and the book's sequence."""
        venue = live_venue(venue, self._up.names(MARKETDATA))
        symbol = canonical_symbol(symbol)
        depth = bounded("depth", depth, 1, MAX_DEPTH)
        return await book_top(self._up, venue, symbol, depth)

    async def order_book_tops(self, venue: str, symbols: Sequence[str], depth: int = 5) -> Json:
        """`order_book_top` of several symbols of a venue from one look at the bridge (the
        advisor's context, refreshing its markets' books at once; not one of the gateway's MCP
        tools): `books` by symbol, each as `order_book_top` answers it; a symbol whose book the
        bridge does not hold (usable) now is left out, without the reason."""
        venue = live_venue(venue, self._up.names(MARKETDATA))
        wanted = [canonical_symbol(symbol) for symbol in symbols]
        depth = bounded("depth", depth, 1, MAX_DEPTH)
        return {"venue": venue, "books": await book_tops(self._up, venue, wanted, depth)}

    def book_events(self, venue: str, symbols: Sequence[str]) -> AsyncGenerator[Sequence[md.MarketEvent]]:
        """The bridge's events of a venue's books as they come (its snapshot of each, then every
        delta; the advisor's context keeps its markets' tops by event time with them; not one of
        the gateway's MCP tools)."""
        venue = live_venue(venue, self._up.names(MARKETDATA))
        return book_events(self._up, venue, [canonical_symbol(symbol) for symbol in symbols])

    async def open_orders(self, venue: str, symbol: str | None = None) -> Json:
        """The open orders on a venue (all symbols, or one): ids, side, type, price, size, filled
        size, status and times. Read only: no tool places or cancels orders."""
        venue = live_venue(venue, self._up.names(TRADEFLOW))
        request = tf.ListOpenOrdersRequest(symbol=optional_symbol(symbol))
        answer = await self._up.unary(TRADEFLOW, venue, "ListOpenOrders", request, tf.ListOpenOrdersResponse)
        return {"venue": venue, "orders": [render.order(o) for o in answer.orders]}

    async def positions(self, venue: str, symbol: str | None = None) -> Json:
        """Positions on a venue (all symbols, or one): signed size (negative is short), average
        entry price and realised PnL in the quote asset, as decimal strings; a derivatives
        position also its mark price, leverage, margin mode (cross or isolated), initial and
        maintenance margin, margin ratio (1 is liquidation), unrealised PnL at mark and
        liquidation price, in its settle asset (each null for spot and where the venue does not
        say); `as_of_ns`: the venue's time the answer is as of (it holds the fills up to then),
        null when it cannot tell."""
        venue = live_venue(venue, self._up.names(TRADEFLOW))
        request = tf.GetPositionsRequest(symbol=optional_symbol(symbol))
        answer = await self._up.unary(TRADEFLOW, venue, "GetPositions", request, tf.GetPositionsResponse)
        positions = [render.position(p) for p in answer.positions]
        return {"venue": venue, "positions": positions, "as_of_ns": answer.as_of_ns or None}

    async def leverage(self, venue: str, symbol: str) -> Json:
        """A derivatives symbol's leverage and margin mode (cross or isolated) in force on a venue,
        and the most leverage it allows there now (null when the venue does not say), as decimal
        strings. A spot symbol is an error naming it; a venue without leverage (Admin capabilities)
        answers that it has none. Read only: only the inspector sets leverage, before an order."""
        venue = live_venue(venue, self._up.names(TRADEFLOW))
        request = tf.GetLeverageRequest(symbol=canonical_symbol(symbol))
        answer = await self._up.unary(TRADEFLOW, venue, "GetLeverage", request, tf.GetLeverageResponse)
        setting = answer.setting
        return {
            "venue": venue,
            "symbol": setting.symbol,
            "leverage": setting.leverage,
            "margin_mode": render.margin_mode(setting.margin_mode),
            "max_leverage": setting.max_leverage or None,
        }

    async def balances(self, venue: str) -> Json:
        """The account's balances on a venue: per asset, free (available for new orders), locked
        (held by open orders) and total, as decimal strings; `as_of_ns` as for positions."""
        venue = live_venue(venue, self._up.names(TRADEFLOW))
        answer = await self._up.unary(
            TRADEFLOW, venue, "GetBalances", tf.GetBalancesRequest(), tf.GetBalancesResponse
        )
        balances = [render.balance(b) for b in answer.balances]
        return {"venue": venue, "balances": balances, "as_of_ns": answer.as_of_ns or None}

    async def account(self, venue: str, account: str | None = None) -> Json:
        """A venue account's balances and positions at one moment: the first answer (the
        snapshot) of the venue's account stream, the view the inspector's reconciliation reads.
        Per asset free, locked, total and the margin its positions hold; per symbol signed size
        (negative is short), entry price, realised PnL and a derivatives position's margin
        figures (as the positions tool); decimal strings. `venue`: a live venue (`binance`, or
        an account's own, `binance.desk-a`); `account`: the account at that exchange (`desk-a`)
        when `venue` names only the exchange. `as_of_ns`: the venue's time the snapshot is as of,
        null when it cannot tell. Read only: no tool places, amends or cancels orders."""
        name = live_venue(account_venue(venue, account), self._up.names(TRADEFLOW))
        answer = await self._up.first(
            TRADEFLOW, name, "StreamAccount", tf.StreamAccountRequest(), tf.StreamAccountResponse
        )
        return {
            "venue": name,
            "exchange": exchange_of(name),
            "account": account_of(name),
            "balances": [render.balance(b) for b in answer.balances],
            "positions": [render.position(p) for p in answer.positions],
            "as_of_ns": answer.as_of_ns or None,
        }

    async def _status(self, venue: str) -> Json:
        answer = await self._up.unary(
            ADMIN, venue, "GetStatus", admin.GetStatusRequest(), admin.GetStatusResponse
        )
        return render.status(answer)

    async def _status_or_error(self, venue: str) -> Json:
        # One venue that does not answer must not hide the others' status.
        try:
            return await self._status(venue)
        except TrademeshError as exc:
            return {"venue": venue, "error": str(exc)}


def _listed_symbol(index: int, symbol: str) -> str:
    """A canonical symbol of market_prices' `symbols`, refused naming its place."""
    try:
        return canonical_symbol(symbol)
    except InvalidArgument as exc:
        raise InvalidArgument.field(f"symbols[{index}]", exc.violations[0].description) from None
