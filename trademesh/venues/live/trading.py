"""TradeFlow through ccxt: orders, balances, positions and candle history for a live venue.

The client_order_id always goes to the venue (ccxt maps "clientOrderId" to the
venue's field: newClientOrderId, clOrdId, orderLinkId, ...), so a retried
request can never create a second order: an answer that does not say whether
the order exists (timeout, connection lost) is settled by asking the venue for
the order by its client id before anything is retried, and a venue that
refuses a duplicate client id hands back the first order.

One order per client order id across the venue's symbols, not only within one:
venues look client ids up per symbol, and some take the same id again on another
symbol (the Binance and Deribit stand-ins do), so the connector indexes every order it sees
(trademesh/venues/live/order_index.py) and, before placing with a caller's id it has seen
on some symbol, asks the venue for that order there; found (open or closed), it
is handed back with duplicate = true. The index starts with the open orders of
every symbol (read before the first such placement) and then holds every order
placed, fetched or listed (the last 100,000 ids). What it cannot see is an order
that closed before this process started: where the venue refuses the id again
(the OKX, Bybit, Kraken and Coinbase stand-ins do), every symbol is searched on
that refusal and the first order found; where it takes the id again on another
symbol, a second order is placed.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import itertools
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import ccxt.pro

from trademesh.core.domain.decimals import format_decimal
from trademesh.core.domain.model import (
    Balance,
    Candle,
    FundingPayment,
    InstrumentKind,
    Order,
    OrderRequest,
    OrderStatus,
    OrderType,
    Position,
    PositionMargin,
    Side,
    Timeframe,
    TimeInForce,
)
from trademesh.core.platform.aio.backoff import Backoff
from trademesh.core.platform.config.env import VENUE_CREDENTIALS, read_secret, venue_variable
from trademesh.core.platform.errors import (
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    ResourceExhausted,
    Unavailable,
)
from trademesh.marketdata.v1 import marketdata_pb2 as md
from trademesh.venues.live.convert import (
    Liquidation,
    balances_from_ccxt,
    funding_from_ccxt,
    order_from_ccxt,
    position_from_ccxt,
    safe_message,
)
from trademesh.venues.live.funding_rates import FundingRates
from trademesh.venues.live.margin import (
    LiveLeverage,
    cross_without_ratio,
    margin_from_ccxt,
    with_account_ratios,
)
from trademesh.venues.live.normalize import candle_from_row, decimal_text, ticker_of
from trademesh.venues.live.order_index import OrderIndex
from trademesh.venues.live.spec import LiveSpec, TradeHistory
from trademesh.venues.runtime.trades import PublicTrade, TradesRead
from trademesh.venues.runtime.venue import OrderRef

__all__ = ["LiveTrading", "new_client_order_id", "retry_after"]

log = logging.getLogger(__name__)

T = TypeVar("T")
# Tries of one venue call when it answers "rate limited" or drops the connection.
_ATTEMPTS = 3
# Pages one ListFundingPayments reads at most from a venue whose funding history pages newest first.
_FUNDING_PAGES = 10
# Windows one GetTrades read asks at most of a venue that answers a window's newest trades.
_WINDOW_TRIES = 10


class LiveTrading:
    def __init__(self, spec: LiveSpec, exchange: Any, symbols: Callable[[], list[str]]) -> None:
        self.spec = spec
        self.exchange = exchange
        self._symbols = symbols
        self._index = OrderIndex()  # order id / client order id -> symbol
        self._learned_open_orders = False
        self._secrets = [read_secret(venue_variable(spec.name, f)) or "" for f in VENUE_CREDENTIALS]
        self._funding_rates = FundingRates(spec.funding_rates, exchange, self._call)
        # SetLeverage / GetLeverage by the exchange's rules (a derivatives venue's spec.margin).
        margin, call = spec.margin, self._call
        self.leverage = LiveLeverage(spec.name, exchange, margin, call, self._secrets) if margin else None

    # ---- orders

    async def place_order(self, request: OrderRequest) -> tuple[Order, bool]:
        self.require_credentials()
        client_id = request.client_order_id or new_client_order_id()
        if request.client_order_id:
            first = await self._first_order(client_id, request.symbol)
            if first is not None:
                return first, True
        if self.spec.margin is not None:  # the symbol's margin mode as the exchange holds it (OKX)
            await self.spec.margin.recall(self.exchange, request.symbol, self._call)
        params = self._order_params(request, client_id)
        works_as = request.type.triggered_type  # a stop goes out as a market or limit order, with its trigger
        price = float(request.price) if request.price is not None else None
        create = functools.partial(
            self.exchange.create_order,
            request.symbol,
            works_as.value,
            request.side.value,
            float(request.size),
            price if works_as is OrderType.LIMIT else None,
            params,
        )
        try:
            raw = await create()
        except ccxt.InvalidOrder as exc:  # DuplicateOrderId, or a venue that words it as a rejection
            return await self._existing(request.symbol, client_id, exc), True
        except (ccxt.RequestTimeout, ccxt.ExchangeNotAvailable, ccxt.NetworkError) as exc:
            if isinstance(exc, ccxt.DDoSProtection):
                raise self._error(exc) from exc
            return await self._settle(request, client_id, create, exc), False
        except ccxt.BaseError as exc:
            raise self._error(exc) from exc
        return self._remember(raw), False

    def _order_params(self, request: OrderRequest, client_id: str) -> dict[str, Any]:
        params: dict[str, Any] = {"clientOrderId": client_id}
        if self.spec.margin is not None:  # the symbol's margin mode, where orders name it (OKX)
            params.update(self.spec.margin.order_params(request.symbol))
        if request.type.is_stop:
            if self.spec.stop_params is None or request.trigger_price is None:  # the runtime refuses it first
                raise FailedPrecondition(
                    f"stop orders are not supported by {self.spec.name}; the inspector emulates them"
                )
            params.update(self.spec.stop_params(format_decimal(request.trigger_price)))
        # A stop-market works as a market order once triggered: IOC by nature, which the venues'
        # stop orders take no time in force for (a FOK one is asked as such).
        implied = TimeInForce.IOC if request.type is OrderType.STOP_MARKET else TimeInForce.GTC
        if request.time_in_force is not implied and request.time_in_force is not TimeInForce.GTC:
            params["timeInForce"] = request.time_in_force.value.upper()
        if request.post_only:
            params["postOnly"] = True
        if request.reduce_only:
            params["reduceOnly"] = True
        return params

    async def _first_order(self, client_id: str, symbol: str) -> Order | None:
        """The order the venue already holds under this client id, wherever the id was seen."""
        await self._learn_open_orders()
        for candidate in self._symbols_holding(client_id, symbol):
            try:
                return await self._by_client_id(candidate, client_id)
            except NotFound:
                continue
        return None

    def _symbols_holding(self, client_id: str, symbol: str) -> list[str]:
        """Where to look before placing: the symbol the id was seen on, and the request's own
        symbol too on a venue that would take a second order with the id there."""
        known = self._index.symbol_of_client_id(client_id)
        found = [] if known is None else [known]
        if not self.spec.unique_client_ids and symbol not in found:
            found.append(symbol)
        return found

    async def _learn_open_orders(self) -> None:
        """Once per process: index the open orders of every symbol (ids placed before a restart)."""
        if not self._learned_open_orders:
            await self.open_orders(None)
            self._learned_open_orders = True

    async def _settle(
        self, request: OrderRequest, client_id: str, create: Callable[[], Awaitable[Any]], first: Exception
    ) -> Order:
        """The venue may or may not have the order: ask by client id before retrying once."""
        log.warning(
            "order %s: no clear answer (%s); asking the venue before any retry",
            client_id,
            safe_message(first, self._secrets),
        )
        try:
            return await self._by_client_id(request.symbol, client_id)
        except NotFound:
            pass
        try:
            return self._remember(await create())
        except ccxt.InvalidOrder as exc:
            return await self._existing(request.symbol, client_id, exc)
        except ccxt.BaseError as exc:
            raise self._error(exc) from exc

    async def _existing(self, symbol: str, client_id: str, rejection: ccxt.BaseError) -> Order:
        """A rejected order whose client id the venue already holds is a duplicate: the first wins.

        The venue may hold the id on any symbol (it refuses ids account-wide): the request's
        symbol is asked first, then the one the id was seen on, then every other.
        """
        known = self._index.symbol_of_client_id(client_id)
        for candidate in dict.fromkeys([symbol, *([known] if known else []), *self._symbols()]):
            try:
                return await self._by_client_id(candidate, client_id)
            except NotFound:
                continue
        raise self._error(rejection) from rejection

    async def _by_client_id(self, symbol: str, client_id: str) -> Order:
        for book in self._books(self._index.is_stop_client_id(client_id)):
            try:
                raw = await self.exchange.fetch_order(None, symbol, {"clientOrderId": client_id, **book})
            except ccxt.OrderNotFound:
                continue
            except ccxt.BaseError as exc:
                raise self._error(exc) from exc
            return self._remember(raw)
        raise NotFound(f"no order with client_order_id {client_id!r} on {self.spec.name}")

    async def cancel_order(self, ref: OrderRef) -> Order:
        self.require_credentials()
        order = await self.get_order(ref)
        book = self._book_of(order)
        try:
            raw = await self.exchange.cancel_order(order.order_id, order.symbol, book)
        except ccxt.OrderNotFound:
            raise NotFound(f"order {order.order_id} is not open on {self.spec.name}") from None
        except ccxt.BaseError as exc:
            raise self._error(exc) from exc
        if book and raw.get("status") is None:  # a stop book's cancel answer is an acknowledgement only
            now = time.time_ns()
            return dataclasses.replace(order, status=OrderStatus.CANCELED, updated_ns=now)
        canceled = order_from_ccxt(self.spec.name, raw, self._liquidation)
        return canceled if canceled.order_id else order

    async def edit_order(self, order: Order, amended: OrderRequest) -> Order:
        """ccxt's edit_order of an open limit order: its new price and total size, in place."""
        self.require_credentials()
        assert amended.price is not None  # a limit order's amendment keeps a price
        edit = functools.partial(
            self.exchange.edit_order,
            order.order_id,
            order.symbol,
            OrderType.LIMIT.value,
            order.side.value,
            float(amended.size),
            float(amended.price),
            {},
        )
        try:
            raw = await edit()
        except ccxt.OrderNotFound:
            raise NotFound(f"order {order.order_id} is not open on {self.spec.name}") from None
        except ccxt.BaseError as exc:
            raise self._error(exc) from exc
        if raw.get("status") is None:  # an acknowledgement only (OKX's amend-order): read it back
            return await self.get_order(OrderRef(order_id=order.order_id))
        return self._remember(raw)

    async def cancel_all_orders(self, symbol: str | None) -> list[Order]:
        self.require_credentials()
        canceled: list[Order] = []
        for name in [symbol] if symbol else self._symbols():
            open_orders = await self.open_orders(name)
            if not open_orders:
                continue
            if self.exchange.has.get("cancelAllOrders"):
                books = {tuple(self._book_of(o).items()) for o in open_orders}  # the books holding some
                for book in books:
                    await self._call(lambda n=name, b=dict(book): self.exchange.cancel_all_orders(n, b))  # type: ignore[misc]
            else:  # the venue has no cancel-all: one cancel per order
                for order in open_orders:
                    await self._call(
                        lambda o=order: self.exchange.cancel_order(o.order_id, o.symbol, self._book_of(o))  # type: ignore[misc]
                    )
            canceled.extend(dataclasses.replace(o, status=OrderStatus.CANCELED) for o in open_orders)
        return canceled

    async def cancel_all_after(self, ttl_ms: int) -> bool:
        """Arm (ttl 0: disarm) the venue's own dead-man switch; a failure is logged, not raised,
        since the runtime's timer is armed either way. When to arm it is the runtime's
        (trademesh.venues.runtime.native: never while a reduce-only order rests)."""
        if not self.spec.native_cancel_after or not self.has_credentials():
            return False
        if ttl_ms == 0 and not self.spec.native_cancel_after_disarms:
            return False
        timeout_ms = 0 if ttl_ms == 0 else max(ttl_ms, self.spec.native_cancel_after_min_ms)
        try:
            await self._call(lambda: self.exchange.cancel_all_orders_after(timeout_ms))
        except (FailedPrecondition, InvalidArgument, NotFound, ResourceExhausted, Unavailable) as exc:
            log.warning("%s: could not arm the venue's cancel-all-after: %s", self.spec.name, exc)
            return False
        return True

    async def get_order(self, ref: OrderRef) -> Order:
        self.require_credentials()
        if ref.client_order_id:
            known = self._index.symbol_of_client_id(ref.client_order_id)
            for symbol in dict.fromkeys([*([known] if known else []), *self._symbols()]):
                try:
                    return await self._by_client_id(symbol, ref.client_order_id)
                except NotFound:
                    continue
            raise NotFound(f"no order with client_order_id {ref.client_order_id!r} on {self.spec.name}")
        known = self._index.symbol_of_order(ref.order_id)
        books = self._books(self._index.is_stop(ref.order_id))
        for candidate, book in itertools.product([known] if known else self._symbols(), books):
            try:
                return self._remember(await self.exchange.fetch_order(ref.order_id, candidate, book))
            except ccxt.OrderNotFound:
                continue
            except ccxt.BaseError as exc:
                raise self._error(exc) from exc
        raise NotFound(f"no order {ref.order_id!r} on {self.spec.name}")

    async def open_orders(self, symbol: str | None) -> list[Order]:
        self.require_credentials()
        orders: list[Order] = []
        for name, book in itertools.product([symbol] if symbol else self._symbols(), self._books()):
            raws = await self._call(lambda n=name, b=book: self.exchange.fetch_open_orders(n, None, None, b))  # type: ignore[misc]
            orders.extend(self._remember(raw) for raw in raws)
        return orders

    async def balances(self) -> list[Balance]:
        self.require_credentials()
        raw = await self._call(self.exchange.fetch_balance)
        rules, info = self.spec.margin, raw.get("info")
        margins = rules.position_margins(info) if rules is not None and isinstance(info, dict) else None
        return balances_from_ccxt(raw, margins)

    async def positions(self, symbol: str | None) -> list[Position]:
        """ccxt's fetch_positions, with each position's margin figures on a derivatives venue
        (trademesh/venues/live/margin.py)."""
        self.require_credentials()
        symbols = [symbol] if symbol else self._symbols()
        spot = self.spec.kind is InstrumentKind.SPOT
        if spot or not symbols or not self.exchange.has.get("fetchPositions"):
            return []
        raws = await self._call(lambda: self.exchange.fetch_positions(symbols))
        found = [position_from_ccxt(raw, self._margin_of(raw)) for raw in raws if raw.get("contracts")]
        assets, rules = cross_without_ratio(found), self.spec.margin
        if not assets or rules is None:
            return found
        return with_account_ratios(found, await rules.account_ratios(self.exchange, assets, self._call))

    def _margin_of(self, raw: dict[str, Any]) -> PositionMargin | None:
        rules = self.spec.margin
        market = self.exchange.markets.get(str(raw.get("symbol"))) if self.exchange.markets else None
        if rules is None or market is None:
            return None
        return margin_from_ccxt(raw, str(market.get("settle") or market.get("quote") or ""), rules)

    async def funding_payments(self, symbol: str | None, since_ns: int, limit: int) -> list[FundingPayment]:
        """The account's funding history (ccxt fetch_funding_history), oldest first from since_ns,
        at most `limit`, each with the rate of its funding time where the history has none and
        the venue's rate history has it (trademesh/venues/live/funding_rates.py): spot venues have none; a
        perpetual venue whose ccxt client cannot read it refuses, rather than answer an empty
        list a ledger would take for "no funding"."""
        if self.spec.kind is InstrumentKind.SPOT:
            return []
        if not self.exchange.has.get("fetchFundingHistory"):
            raise FailedPrecondition(f"{self.spec.name}: ccxt cannot read this venue's funding history")
        self.require_credentials()
        since_ms = since_ns // 1_000_000  # the runtime drops what is before since_ns
        if self.spec.funding_cursor is None:
            page = min(limit, self.spec.funding_page)
            raws = await self._call(
                lambda: self.exchange.fetch_funding_history(symbol, since_ms or None, page)
            )
        else:
            raws = await self._funding_back_to(since_ms)  # every symbol's: the runtime keeps one's
        payments = [funding_from_ccxt(raw) for raw in raws]
        # What the runtime keeps of them (services.ListFundingPayments), before rates are read.
        kept = [p for p in payments if p.ts_ns >= since_ns and (symbol is None or p.symbol == symbol)]
        kept.sort(key=lambda p: (p.ts_ns, p.funding_id))
        return await self._funding_rates.attach(kept[:limit])

    async def _funding_back_to(self, since_ms: int) -> list[dict[str, Any]]:
        """Every funding entry since since_ms, of a venue that pages newest first (OKX): pages
        going back (the spec's cursor names the oldest entry seen) until one reaches since_ms
        or the history ends. Every symbol's, so that a short page means the end (ccxt would
        filter one symbol's out of each page). More than _FUNDING_PAGES pages back is refused,
        never cut short: the oldest payments would be missing."""
        found: list[dict[str, Any]] = []
        params: dict[str, Any] = {}
        size, cursor = self.spec.funding_page, str(self.spec.funding_cursor)
        for _ in range(_FUNDING_PAGES):
            raws = await self._call(
                lambda p=params: self.exchange.fetch_funding_history(None, None, size, p)  # type: ignore[misc]
            )
            raws = sorted(raws, key=lambda raw: int(raw.get("timestamp") or 0))
            found = raws + found
            if len(raws) < size or int(raws[0].get("timestamp") or 0) < since_ms:
                return found
            params = {cursor: raws[0]["id"]}
        raise FailedPrecondition(
            f"{self.spec.name}: more than {_FUNDING_PAGES * size} funding payments since since_ns; "
            "ask from a later since_ns"
        )

    # ---- history

    async def candles(
        self, symbol: str, timeframe: Timeframe, start_ns: int, end_ns: int, limit: int
    ) -> list[Candle]:
        """Historical candles over REST, page by page (ccxt paces the calls to the venue's limits)."""
        name = timeframe.label
        if name not in (self.exchange.timeframes or {}):
            raise FailedPrecondition(f"{self.spec.name} has no {name} candles over REST")
        if timeframe in self.spec.off_grid:
            raise FailedPrecondition(f"{self.spec.name}'s {name} candles open off the mesh's {name} grid")
        # Whole ms up, both: a candle opening before start_ns (in the same ms) is no candle of the
        # range, and the ceiling keeps every candle opening before end_ns (exclusive) in it.
        since, end_ms = -(-start_ns // 1_000_000), -(-end_ns // 1_000_000)
        out: list[Candle] = []
        while since < end_ms and len(out) < limit:
            page = min(self.spec.candles_page, limit - len(out))
            if self.spec.klines_method is None:
                rows = await self._call(lambda s=since, p=page: self.exchange.fetch_ohlcv(symbol, name, s, p))  # type: ignore[misc]
            else:
                rows = await self._call(lambda s=since, p=page: self._klines(symbol, name, s, p))  # type: ignore[misc]
            rows = [row for row in rows if since <= row[0] < end_ms]
            if not rows:
                break
            out.extend(candle_from_row(timeframe, row, True) for row in rows)
            since = rows[-1][0] + timeframe.value * 1000
        return out[:limit]

    async def _klines(self, symbol: str, name: str, since_ms: int, limit: int) -> list[list[Any]]:
        """The venue's own candle rows (LiveSpec.klines_method) from since_ms, oldest first; one
        opening at 0 ms is left out, as ccxt's OHLCV leaves it (filter_by_since_limit: a time of 0
        is none; only the stand-ins' made-up past reaches back to the epoch)."""
        method = getattr(self.exchange, str(self.spec.klines_method))
        request = {
            "symbol": self.exchange.market_id(symbol),
            "interval": self.exchange.timeframes[name],
            "startTime": since_ms,
            "limit": limit,
        }
        rows = await method(request)
        return [[int(row[0]), *row[1:]] for row in rows if int(row[0]) != 0]

    async def trades(self, symbol: str, since_ns: int, end_ns: int, limit: int) -> TradesRead:
        """A read of the venue's public trades from since_ns on, as the spec's TradeHistory says it
        pages: one fetch_trades call forward from a time, or (newest_first) the windows of
        _newest_first.

        The venue stamps trades in ms: a call from the ms of since_ns, whose trades before since_ns
        (in that ms) are dropped here; end_ns is exclusive, so the last ms asked is the one before
        the ceiling of end_ns."""
        history = self.spec.trade_history
        if history is None:
            raise FailedPrecondition(f"{self.spec.name} cannot page its trade history forward from a time")
        since_ms, end_ms = since_ns // 1_000_000, -(-end_ns // 1_000_000)
        if history.newest_first:
            return await self._newest_first(symbol, history, since_ns, end_ns)
        until_ms = end_ms - 1
        if history.window_ms is not None:
            until_ms = min(until_ms, since_ms + history.window_ms - 1)
        asked = max(1, min(limit, history.page))
        params = dict(history.params(since_ms, until_ms))
        rows = await self._call(lambda: self.exchange.fetch_trades(symbol, since_ms, asked, params))
        parsed = [_public_trade(row) for row in rows]
        trades = [t for t in parsed if since_ns <= t.ts_event_ns < end_ns]
        if any(t.ts_event_ns >= end_ns for t in parsed) or (until_ms >= end_ms - 1 and len(rows) < asked):
            # Past the range's end, or every trade up to it: nothing of the range comes after.
            return TradesRead(trades, complete=True)
        if len(rows) < asked:
            # Every trade of this call's window: the next read starts after it.
            return TradesRead(trades, complete=False, scanned_to_ns=(until_ms + 1) * 1_000_000)
        return TradesRead(trades, complete=False)

    async def _newest_first(
        self, symbol: str, history: TradeHistory, since_ns: int, end_ns: int
    ) -> TradesRead:
        """Every trade of one window from since_ns, at a venue that answers a window's newest
        trades: a window answered with less than a full page is whole.

        The read searches for a long whole window: a full page's trades took some time, and the
        next window asked is that long less a tenth (about nine tenths of a page at that pace);
        once a whole one is known holding less than half a page (a quiet stretch before a burst),
        the window up to the first full page's oldest trade, then halfway between the longest
        whole and the shortest full window. It answers the longest whole window found within
        _WINDOW_TRIES calls."""
        unit = history.unit_ms
        start_ms = since_ns // 1_000_000 // unit * unit
        end_ms = -(-end_ns // 1_000_000)
        last_ms = -(-end_ms // unit) * unit  # the range's end, up to the unit
        window = max(unit, (history.window_ms or 60_000) // unit * unit)
        whole: tuple[int, list[Any]] | None = None  # the longest whole window asked, its trades
        full: int | None = None  # the shortest full window asked
        before_page: int | None = None  # the window up to the first full page's oldest trade
        for _ in range(_WINDOW_TRIES):
            window = min(window, last_ms - start_ms)
            until_ms = start_ms + window - 1
            params = dict(history.params(start_ms, until_ms))
            rows = await self._call(
                lambda p=params: self.exchange.fetch_trades(symbol, start_ms, history.page, p)  # type: ignore[misc]
            )
            if len(rows) >= history.page:
                full = window
                if window <= unit:
                    break
                if whole is None:
                    stamps = [int(row["timestamp"]) for row in rows]
                    spanned = max(stamps) - min(stamps) + 1  # a page of trades took this long
                    window = max(unit, min(window - unit, spanned * 9 // 10 // unit * unit))
                    if before_page is None:
                        before_page = (min(stamps) - start_ms) // unit * unit
                    continue
            else:
                whole = (window, rows)
                if full is None or len(rows) >= history.page // 2:
                    break
                if before_page is not None and whole[0] < before_page < full:
                    # Sparse here, dense later: up to the first full page's trades, once.
                    window, before_page = before_page, None
                    continue
            # Between the longest whole window and the shortest full one.
            assert whole is not None and full is not None
            window = (whole[0] + full) // 2 // unit * unit
            if window <= whole[0]:
                break
        if whole is None:
            raise Unavailable(
                f"{self.spec.name}: no window from {since_ns} ns holds fewer than {history.page} "
                f"trades of {symbol} (as many in {unit} ms): its trade history cannot be paged there"
            )
        window, rows = whole
        parsed = [_public_trade(row) for row in rows]
        # Oldest first, and within a time by trade id (the venue's ids are numbers).
        parsed.sort(key=lambda t: (t.ts_event_ns, len(t.trade_id), t.trade_id))
        trades = [t for t in parsed if since_ns <= t.ts_event_ns < end_ns]
        if start_ms + window >= last_ms:
            return TradesRead(trades, complete=True)
        return TradesRead(trades, complete=False, scanned_to_ns=(start_ms + window) * 1_000_000)

    async def tickers(self, symbols: list[str]) -> list[md.SymbolTicker]:
        """Every symbol's ticker from fetch_tickers: one call (one per base asset and market type
        where the venue takes no more: tickers_per_base), in the order of `symbols`."""
        markets = self.exchange.markets or {}
        groups: dict[tuple[str, str], list[str]] = {}
        for symbol in symbols:
            market = markets.get(symbol) or {}
            base = str(market.get("base", "")) if self.spec.tickers_per_base else ""
            groups.setdefault((str(market.get("type", "")), base), []).append(symbol)
        found: dict[str, Any] = {}
        for group in groups.values():
            found.update(await self._call(lambda g=group: self.exchange.fetch_tickers(g)))  # type: ignore[misc]
        out: list[md.SymbolTicker] = []
        for symbol in symbols:
            raw = found.get(symbol)
            if not raw:
                continue
            ticker = ticker_of(raw, self.spec.tickers_open)
            if not (ticker.best_bid or ticker.best_ask or ticker.last_price):
                continue
            stamp = raw.get("timestamp")
            out.append(
                md.SymbolTicker(
                    symbol=symbol, ts_event_ns=int(stamp) * 1_000_000 if stamp else 0, ticker=ticker
                )
            )
        return out

    # ---- helpers

    async def _call(self, call: Callable[[], Awaitable[T]]) -> T:
        backoff = Backoff(0.5, 8.0)
        for attempt in range(_ATTEMPTS):
            try:
                return await call()
            except ccxt.DDoSProtection as exc:
                if attempt == _ATTEMPTS - 1:
                    raise self._error(exc) from exc
                await asyncio.sleep(retry_after(self.exchange) or backoff.next())
            except ccxt.NetworkError as exc:
                if attempt == _ATTEMPTS - 1:
                    raise self._error(exc) from exc
                await asyncio.sleep(backoff.next())
            except ccxt.BaseError as exc:
                raise self._error(exc) from exc
        raise AssertionError("unreachable")

    def _books(self, stop_first: bool = False) -> list[dict[str, Any]]:
        """The ccxt params of each book the venue keeps orders in: its orders', then (kept apart)
        its stops'; the stops' first for an order known to be a stop."""
        if self.spec.stop_book is None:
            return [{}]
        books: list[dict[str, Any]] = [{}, dict(self.spec.stop_book)]
        return books[::-1] if stop_first else books

    def _book_of(self, order: Order) -> dict[str, Any]:
        """The ccxt params that address the book holding this order ({}: the ordinary one)."""
        return dict(self.spec.stop_book) if order.type.is_stop and self.spec.stop_book is not None else {}

    @property
    def _liquidation(self) -> Liquidation | None:
        return self.spec.margin.liquidation if self.spec.margin is not None else None

    def _remember(self, raw: dict[str, Any]) -> Order:
        order = order_from_ccxt(self.spec.name, raw, self._liquidation)
        self._index.learn(order)
        return order

    def has_credentials(self) -> bool:
        return read_secret(venue_variable(self.spec.name, "API_KEY")) is not None

    def require_credentials(self) -> None:
        if not self.has_credentials():
            raise FailedPrecondition(
                f"venue {self.spec.name} has no credentials: set {venue_variable(self.spec.name, 'API_KEY')} "
                f"and {venue_variable(self.spec.name, 'API_SECRET')} to trade"
            )

    def _error(self, exc: ccxt.BaseError) -> Exception:
        text = f"{self.spec.name}: {safe_message(exc, self._secrets)}"
        if isinstance(exc, ccxt.OrderNotFound):
            return NotFound(text)
        if isinstance(exc, ccxt.InsufficientFunds | ccxt.InvalidOrder | ccxt.AuthenticationError):
            return FailedPrecondition(text)
        if isinstance(exc, ccxt.BadSymbol | ccxt.BadRequest):
            return InvalidArgument.field("symbol" if isinstance(exc, ccxt.BadSymbol) else "request", text)
        if isinstance(exc, ccxt.DDoSProtection):
            return ResourceExhausted(text)
        return Unavailable(text)


def _public_trade(row: dict[str, Any]) -> PublicTrade:
    """A ccxt trade structure (fetch_trades') as a PublicTrade: prices and sizes as the venue's
    decimals (ccxt's floats read by their shortest repr)."""
    return PublicTrade(
        ts_event_ns=int(row["timestamp"]) * 1_000_000,
        trade_id=str(row.get("id") or ""),
        price=decimal_text(row["price"]),
        size=decimal_text(row["amount"]),
        taker_side=Side.SELL if row.get("side") == "sell" else Side.BUY,
    )


def new_client_order_id() -> str:
    """The client order id sent for an order placed without one (every venue takes its form)."""
    return f"tm{uuid.uuid4().hex[:20]}"


def retry_after(exchange: Any) -> float | None:
    """Seconds from the venue's last Retry-After header, when it sent one."""
    headers = getattr(exchange, "last_response_headers", None) or {}
    value = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None
