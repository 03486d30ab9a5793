"""The gRPC servicers of a venue process: MarketData, TradeFlow and Admin over a VenueRuntime.

Handlers validate, call the runtime or the venue, and convert; errors are
trademesh.core.platform.errors types, mapped to statuses by trademesh.core.platform.rpc's edge interceptor.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from trademesh.admin.v1 import admin_pb2 as admin
from trademesh.admin.v1 import admin_pb2_grpc as admin_grpc
from trademesh.common.v1 import common_pb2 as common
from trademesh.core.domain import order_rules
from trademesh.core.domain.accounts import account_of, exchange_of
from trademesh.core.domain.convert import (
    CHANNEL_TO_PB,
    MARGIN_MODE_TO_PB,
    balance_to_pb,
    candle_to_pb,
    funding_payment_to_pb,
    instrument_to_pb,
    leverage_to_pb,
    order_to_pb,
    position_to_pb,
)
from trademesh.core.domain.decimals import format_decimal
from trademesh.core.platform.errors import FailedPrecondition
from trademesh.core.platform.logs.setup import bound_trace_id
from trademesh.core.platform.rpc.context import Context
from trademesh.core.platform.rpc.edge import Registrar
from trademesh.core.platform.rpc.handlers import add_handlers, unary_handler, wire_stream_handler
from trademesh.core.platform.rpc.server import Service
from trademesh.core.platform.rpc.status import abort_unimplemented
from trademesh.marketdata.v1 import marketdata_pb2 as md
from trademesh.marketdata.v1 import marketdata_pb2_grpc as md_grpc
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf
from trademesh.tradeflow.v1 import tradeflow_pb2_grpc as tf_grpc
from trademesh.venues.runtime import validate
from trademesh.venues.runtime.amend import amend
from trademesh.venues.runtime.cancels import AMENDED, BY_REQUEST, cancel_all_reason
from trademesh.venues.runtime.deadman import DeadManState
from trademesh.venues.runtime.history import ResumePoint
from trademesh.venues.runtime.runtime import RuntimeState, VenueRuntime
from trademesh.venues.runtime.stats import StreamState, StreamStats
from trademesh.venues.runtime.subscribe import open_market_stream
from trademesh.venues.runtime.trades import encode_token, trade_to_pb, trades_page
from trademesh.venues.runtime.venue import AccountFeed, OrderRef, Venue

__all__ = ["venue_services"]

log = logging.getLogger(__name__)


class MarketDataService(md_grpc.MarketDataServicer):
    def __init__(self, runtime: VenueRuntime) -> None:
        self.rt = runtime

    async def ListInstruments(
        self,
        request: md.ListInstrumentsRequest,
        context: Context[md.ListInstrumentsRequest, md.ListInstrumentsResponse],
    ) -> md.ListInstrumentsResponse:
        self.rt.instruments = {item.symbol: item for item in self.rt.venue.instruments()}  # its list now
        for index, symbol in enumerate(request.symbols):
            validate.symbol_filter(symbol, self.rt.instruments, f"symbols[{index}]")
        wanted = set(request.symbols)
        items = [i for s, i in sorted(self.rt.instruments.items()) if not wanted or s in wanted]
        return md.ListInstrumentsResponse(instruments=[instrument_to_pb(i) for i in items])

    async def Subscribe(  # type: ignore[override]
        self, request: md.SubscribeRequest, context: Context[md.SubscribeRequest, bytes]
    ) -> AsyncIterator[bytes]:
        """Yields encoded SubscribeResponse batches (see _add_market_data: no re-encoding)."""
        subscriber = open_market_stream(self.rt, request)
        try:
            async for batch in subscriber.batches():
                yield batch
        finally:
            self.rt.fanout.unsubscribe(subscriber)

    async def GetCandles(
        self, request: md.GetCandlesRequest, context: Context[md.GetCandlesRequest, md.GetCandlesResponse]
    ) -> md.GetCandlesResponse:
        symbol, timeframe, start_ns, end_ns, limit = validate.candles_request(
            request, self.rt.instruments, time.time_ns()
        )
        candles = await self.rt.venue.candles(symbol, timeframe, start_ns, end_ns, limit)
        return md.GetCandlesResponse(candles=[candle_to_pb(c) for c in candles])

    async def GetTrades(
        self, request: md.GetTradesRequest, context: Context[md.GetTradesRequest, md.GetTradesResponse]
    ) -> md.GetTradesResponse:
        venue = self.rt.venue
        if not venue.trade_history:
            await abort_unimplemented(context, venue.name, "does not serve trade history", "trade_history")
        cursor, limit = validate.trades_request(request, self.rt.instruments, time.time_ns())
        # Enough to make a page after dropping the trades of the last page's instant.
        read = await venue.trades(cursor.symbol, cursor.since_ns, cursor.end_ns, limit + cursor.skip)
        page, following = trades_page(cursor, read, limit, venue.name)
        return md.GetTradesResponse(
            trades=[trade_to_pb(t) for t in page],
            next_page_token="" if following is None else encode_token(following),
        )

    async def GetTickers(
        self, request: md.GetTickersRequest, context: Context[md.GetTickersRequest, md.GetTickersResponse]
    ) -> md.GetTickersResponse:
        venue = self.rt.venue
        if not venue.all_tickers:
            await abort_unimplemented(
                context, venue.name, "does not serve all tickers at once", "all_tickers"
            )
        symbols = validate.tickers_request(request, self.rt.instruments)
        return md.GetTickersResponse(tickers=await venue.tickers(symbols))


def _add_market_data(servicer: MarketDataService, server: Registrar) -> None:
    """Like the generated add function, but Subscribe's batches are already wire bytes."""
    handlers = {
        "ListInstruments": unary_handler(
            servicer.ListInstruments, md.ListInstrumentsRequest, md.ListInstrumentsResponse
        ),
        "Subscribe": wire_stream_handler(servicer.Subscribe, md.SubscribeRequest),
        "GetCandles": unary_handler(servicer.GetCandles, md.GetCandlesRequest, md.GetCandlesResponse),
        "GetTrades": unary_handler(servicer.GetTrades, md.GetTradesRequest, md.GetTradesResponse),
        "GetTickers": unary_handler(servicer.GetTickers, md.GetTickersRequest, md.GetTickersResponse),
    }
    add_handlers(server, md.DESCRIPTOR.services_by_name["MarketData"].full_name, handlers)


class TradeFlowService(tf_grpc.TradeFlowServicer):
    def __init__(self, runtime: VenueRuntime) -> None:
        self.rt = runtime
        self.venue = runtime.venue

    async def PlaceOrder(
        self, request: tf.PlaceOrderRequest, context: Context[tf.PlaceOrderRequest, tf.PlaceOrderResponse]
    ) -> tf.PlaceOrderResponse:
        not_trading = self.venue.not_trading(request.symbol)  # delisted: no longer in its list
        if not_trading is not None:
            raise FailedPrecondition(not_trading)
        order_request = validate.place_order(request, self.rt.instruments)
        if order_request.type.is_stop and not self.venue.supports_stop_orders:
            raise FailedPrecondition(
                f"stop orders are not supported by {self.venue.name}; the inspector emulates them"
            )
        self.rt.require_serving()
        order, duplicate = await self.rt.place_order(order_request)
        placed = order_to_pb(order)
        # A traced call's order is logged under its trace id (trademesh.core.platform.rpc.edge), so a
        # trace shows its order; untraced ones are not: a line an order cost 20-30 % of PlaceOrder's rate
        # (bench/place_order.py; docs/benchmarks.md section 26).
        if bound_trace_id() is not None:
            self._log_placed(placed, duplicate)
        return tf.PlaceOrderResponse(order=placed, duplicate=duplicate)

    def _log_placed(self, placed: tf.Order, duplicate: bool) -> None:
        log.info(
            "%s: order %s %s %s %s: %s%s", self.venue.name, placed.client_order_id, placed.symbol,
            common.Side.Name(placed.side).removeprefix("SIDE_"), placed.size,
            tf.OrderStatus.Name(placed.status).removeprefix("ORDER_STATUS_"),
            " (a repeat: the order placed before)" if duplicate else "",
        )  # fmt: skip

    async def CancelOrder(
        self, request: tf.CancelOrderRequest, context: Context[tf.CancelOrderRequest, tf.CancelOrderResponse]
    ) -> tf.CancelOrderResponse:
        ref = validate.order_ref(request.order_id, request.client_order_id)
        reason = validate.cancel_reason(request.reason) or BY_REQUEST
        return tf.CancelOrderResponse(order=order_to_pb(await self.venue.cancel_order(ref, reason)))

    async def CancelAllOrders(
        self,
        request: tf.CancelAllOrdersRequest,
        context: Context[tf.CancelAllOrdersRequest, tf.CancelAllOrdersResponse],
    ) -> tf.CancelAllOrdersResponse:
        symbol = validate.symbol_filter(request.symbol, self.rt.instruments)
        reason = cancel_all_reason(validate.cancel_reason(request.reason))
        orders = await self.venue.cancel_all_orders(symbol, reason)
        return tf.CancelAllOrdersResponse(orders=[order_to_pb(o) for o in orders])

    async def AmendOrder(
        self, request: tf.AmendOrderRequest, context: Context[tf.AmendOrderRequest, tf.AmendOrderResponse]
    ) -> tf.AmendOrderResponse:
        change = order_rules.amend_order(request, validate.cancel_reason(request.reason) or AMENDED)
        self.rt.require_serving()
        ref = OrderRef(order_id=request.order_id, client_order_id=request.client_order_id)
        done = await amend(self.venue, self.rt.place_order, self.rt.instruments, ref, change)
        return tf.AmendOrderResponse(
            order=order_to_pb(done.order),
            replaced=done.replaced,
            canceled=None if done.canceled is None else order_to_pb(done.canceled),
            duplicate=done.duplicate,
        )

    async def SetLeverage(
        self, request: tf.SetLeverageRequest, context: Context[tf.SetLeverageRequest, tf.SetLeverageResponse]
    ) -> tf.SetLeverageResponse:
        await self._require_leverage(context)
        symbol, leverage, mode = order_rules.set_leverage(
            request, self.rt.instruments, self.venue.margin_modes
        )
        self.rt.require_serving()
        setting = await self.venue.set_leverage(symbol, leverage, mode)
        log.info(
            "%s: leverage of %s set to %s (%s)", self.venue.name, symbol,
            format_decimal(setting.leverage), setting.mode.value,
        )  # fmt: skip
        return tf.SetLeverageResponse(setting=leverage_to_pb(setting))

    async def GetLeverage(
        self, request: tf.GetLeverageRequest, context: Context[tf.GetLeverageRequest, tf.GetLeverageResponse]
    ) -> tf.GetLeverageResponse:
        await self._require_leverage(context)
        found = order_rules.Violations()
        symbol = order_rules.leverage_symbol(found, request.symbol, self.rt.instruments)
        found.raise_any()
        return tf.GetLeverageResponse(setting=leverage_to_pb(await self.venue.leverage(symbol)))

    async def _require_leverage(self, context: Any) -> None:
        if not self.venue.margin_modes:
            await abort_unimplemented(
                context,
                self.venue.name,
                "keeps no leverage per symbol to set or read: a spot venue, or one whose margin follows "
                "from the account's equity",
                "leverage",
            )

    async def StreamAccount(
        self,
        request: tf.StreamAccountRequest,
        context: Context[tf.StreamAccountRequest, tf.StreamAccountResponse],
    ) -> AsyncIterator[tf.StreamAccountResponse]:
        self.rt.require_serving()
        hub = self.rt.account
        subscriber, snapshot = await hub.subscribe()
        try:
            yield snapshot
            async for response in subscriber.responses():
                yield response
        finally:
            hub.unsubscribe(subscriber)

    async def GetOrder(
        self, request: tf.GetOrderRequest, context: Context[tf.GetOrderRequest, tf.GetOrderResponse]
    ) -> tf.GetOrderResponse:
        ref = validate.order_ref(request.order_id, request.client_order_id)
        return tf.GetOrderResponse(order=order_to_pb(await self.venue.get_order(ref)))

    async def ListOpenOrders(
        self,
        request: tf.ListOpenOrdersRequest,
        context: Context[tf.ListOpenOrdersRequest, tf.ListOpenOrdersResponse],
    ) -> tf.ListOpenOrdersResponse:
        symbol = validate.symbol_filter(request.symbol, self.rt.instruments)
        orders = await self.venue.open_orders(symbol)
        return tf.ListOpenOrdersResponse(orders=[order_to_pb(o) for o in orders])

    async def GetBalances(
        self, request: tf.GetBalancesRequest, context: Context[tf.GetBalancesRequest, tf.GetBalancesResponse]
    ) -> tf.GetBalancesResponse:
        balances = await self.venue.balances()
        as_of_ns = self.venue.account_as_of_ns()  # no await between: the answer's own moment
        return tf.GetBalancesResponse(balances=[balance_to_pb(b) for b in balances], as_of_ns=as_of_ns)

    async def GetPositions(
        self,
        request: tf.GetPositionsRequest,
        context: Context[tf.GetPositionsRequest, tf.GetPositionsResponse],
    ) -> tf.GetPositionsResponse:
        symbol = validate.symbol_filter(request.symbol, self.rt.instruments)
        positions = await self.venue.positions(symbol)
        as_of_ns = self.venue.account_as_of_ns()
        return tf.GetPositionsResponse(positions=[position_to_pb(p) for p in positions], as_of_ns=as_of_ns)

    async def ListFundingPayments(
        self,
        request: tf.ListFundingPaymentsRequest,
        context: Context[tf.ListFundingPaymentsRequest, tf.ListFundingPaymentsResponse],
    ) -> tf.ListFundingPaymentsResponse:
        symbol, since_ns, limit = validate.funding_request(request, self.rt.instruments, time.time_ns())
        kept = await self.rt.funding_page(symbol, since_ns, limit)
        return tf.ListFundingPaymentsResponse(payments=[funding_payment_to_pb(p) for p in kept])

    async def StreamExecutions(
        self,
        request: tf.StreamExecutionsRequest,
        context: Context[tf.StreamExecutionsRequest, tf.StreamExecutionsResponse],
    ) -> AsyncIterator[tf.StreamExecutionsResponse]:
        for index, symbol in enumerate(request.symbols):
            validate.symbol_filter(symbol, self.rt.instruments, f"symbols[{index}]")
        self.rt.require_serving()
        resume = None
        if request.HasField("resume"):
            resume = ResumePoint(request.resume.epoch, request.resume.position)
        hub = self.rt.executions
        subscriber = hub.subscribe(frozenset(request.symbols), resume)
        try:
            # Headers now, not with the first execution: a client (or the gateway relaying to a
            # browser) learns the stream is open, so nothing it does from here on goes unseen.
            await context.send_initial_metadata(())
            if subscriber.header is not None:
                yield subscriber.header
            async for batch in subscriber.batches():
                yield hub.response(batch)
        finally:
            self.rt.executions.unsubscribe(subscriber)


_STREAM_STATE = {
    StreamState.CONNECTING: admin.STREAM_STATE_CONNECTING,
    StreamState.CONNECTED: admin.STREAM_STATE_CONNECTED,
    StreamState.DISCONNECTED: admin.STREAM_STATE_DISCONNECTED,
    StreamState.STOPPED: admin.STREAM_STATE_STOPPED,
    StreamState.FAILED: admin.STREAM_STATE_FAILED,
}


def _stream_state(stats: StreamStats) -> admin.StreamState.ValueType:
    if stats.state is StreamState.CONNECTED and stats.stale:
        return admin.STREAM_STATE_STALE
    if stats.state is StreamState.CONNECTED and stats.incomplete:
        return admin.STREAM_STATE_INCOMPLETE
    return _STREAM_STATE[stats.state]


def _detail(stats: StreamStats) -> str:
    """Why the stream is in its state (FAILED, STALE, INCOMPLETE); "" otherwise."""
    return stats.detail or (stats.incomplete if _stream_state(stats) == admin.STREAM_STATE_INCOMPLETE else "")


# A venue is RUNNING while every stream is in one of these (a STOPPED one was removed on purpose).
_HEALTHY = (admin.STREAM_STATE_CONNECTED, admin.STREAM_STATE_STOPPED)


def _dead_man(state: DeadManState) -> admin.DeadManStatus:
    return admin.DeadManStatus(
        armed=state.armed,
        ttl_ms=state.ttl_ms,
        deadline_ns=state.deadline_ns,
        trips=state.trips,
        last_trip_ns=state.last_trip_ns,
        keeps_reduce_only=state.keeps_reduce_only,
        last_trip_canceled=state.last_trip_canceled,
        last_trip_kept=state.last_trip_kept,
        native=admin.NativeDeadMan(
            available=state.native.available, armed=state.native.armed, detail=state.native.detail
        ),
    )


def _capabilities(venue: Venue) -> admin.VenueCapabilities:
    polled = venue.account_feed is AccountFeed.POLL
    return admin.VenueCapabilities(
        stop_orders=venue.supports_stop_orders,
        amend=admin.AMEND_MODE_NATIVE if venue.amends_orders else admin.AMEND_MODE_CANCEL_REPLACE,
        account_feed=admin.ACCOUNT_FEED_POLL if polled else admin.ACCOUNT_FEED_PUSH,
        account_poll_interval_ms=round(venue.account_poll_interval_s * 1000) if polled else 0,
        trade_history=venue.trade_history,
        all_tickers=venue.all_tickers,
        leverage=bool(venue.margin_modes),
        margin_modes=[MARGIN_MODE_TO_PB[mode] for mode in venue.margin_modes],
        liquidates=venue.liquidates,
    )


class AdminService(admin_grpc.AdminServicer):
    def __init__(self, runtime: VenueRuntime) -> None:
        self.rt = runtime

    async def GetStatus(
        self,
        request: admin.GetStatusRequest,
        context: Context[admin.GetStatusRequest, admin.GetStatusResponse],
    ) -> admin.GetStatusResponse:
        now_ns = time.time_ns()
        streams = [self._stream_status(stats, now_ns) for stats in self.rt.streams.all()]
        return admin.GetStatusResponse(
            venue=self.rt.name,
            state=self._venue_state(streams),
            started_ns=self.rt.started_ns,
            streams=streams,
            subscriber_count=len(self.rt.fanout.subscribers) + len(self.rt.executions.subscribers),
            dead_man=_dead_man(self.rt.deadman.state()),
            capabilities=_capabilities(self.rt.venue),
            paper=self.rt.venue.paper,
            exchange=exchange_of(self.rt.name),
            account=account_of(self.rt.name) or "",
        )

    def _venue_state(self, streams: list[admin.StreamStatus]) -> admin.VenueState.ValueType:
        if self.rt.state is RuntimeState.STARTING:
            return admin.VENUE_STATE_STARTING
        if self.rt.state is RuntimeState.DRAINING:
            return admin.VENUE_STATE_DRAINING
        if any(s.state not in _HEALTHY for s in streams):
            return admin.VENUE_STATE_DEGRADED
        return admin.VENUE_STATE_RUNNING

    def _stream_status(self, stats: StreamStats, now_ns: int) -> admin.StreamStatus:
        return admin.StreamStatus(
            symbol=stats.key.symbol,
            channel=CHANNEL_TO_PB[stats.key.channel],
            state=_stream_state(stats),
            events_per_s=round(stats.events_per_s, 3),
            events_total=stats.events_total,
            last_event_age_ms=stats.last_event_age_ms(now_ns),
            subscriber_count=self.rt.subscriber_count(stats.key),
            reconnects=stats.reconnects,
            resyncs=stats.resyncs,
            rate_limit_hits=stats.rate_limit_hits,
            malformed_messages=stats.malformed_messages,
            checksum_mismatches=stats.checksum_mismatches,
            usual_silence_ms=round(stats.usual_silence_s * 1000),
            detail=_detail(stats),
            duplicate_trades=stats.duplicate_trades,
            poll_interval_ms=stats.poll_interval_ms,
        )

    def _subscriptions(self) -> list[admin.Subscription]:
        keys = sorted(self.rt.active, key=lambda k: (k.symbol, k.channel.value))
        return [admin.Subscription(symbol=k.symbol, channel=CHANNEL_TO_PB[k.channel]) for k in keys]

    async def ListSubscriptions(
        self,
        request: admin.ListSubscriptionsRequest,
        context: Context[admin.ListSubscriptionsRequest, admin.ListSubscriptionsResponse],
    ) -> admin.ListSubscriptionsResponse:
        return admin.ListSubscriptionsResponse(subscriptions=self._subscriptions())

    async def AddSubscriptions(
        self,
        request: admin.AddSubscriptionsRequest,
        context: Context[admin.AddSubscriptionsRequest, admin.AddSubscriptionsResponse],
    ) -> admin.AddSubscriptionsResponse:
        keys = validate.stream_keys(request.subscriptions, self.rt.instruments, self.rt.venue.channels)
        await self.rt.set_streams(self.rt.active | set(keys))
        return admin.AddSubscriptionsResponse(subscriptions=self._subscriptions())

    async def RemoveSubscriptions(
        self,
        request: admin.RemoveSubscriptionsRequest,
        context: Context[admin.RemoveSubscriptionsRequest, admin.RemoveSubscriptionsResponse],
    ) -> admin.RemoveSubscriptionsResponse:
        keys = validate.stream_keys(request.subscriptions, self.rt.instruments)
        await self.rt.set_streams(self.rt.active - set(keys))
        return admin.RemoveSubscriptionsResponse(subscriptions=self._subscriptions())

    async def Heartbeat(
        self,
        request: admin.HeartbeatRequest,
        context: Context[admin.HeartbeatRequest, admin.HeartbeatResponse],
    ) -> admin.HeartbeatResponse:
        state = await self.rt.deadman.heartbeat(validate.heartbeat_ttl(request.ttl_ms))
        return admin.HeartbeatResponse(dead_man=_dead_man(state))

    async def Reconnect(
        self,
        request: admin.ReconnectRequest,
        context: Context[admin.ReconnectRequest, admin.ReconnectResponse],
    ) -> admin.ReconnectResponse:
        return admin.ReconnectResponse(streams=await self.rt.venue.reconnect())

    async def Drain(
        self, request: admin.DrainRequest, context: Context[admin.DrainRequest, admin.DrainResponse]
    ) -> admin.DrainResponse:
        ended, kept = await self.rt.drain(request.cancel_open_orders)
        return admin.DrainResponse(
            streams_ended=ended, orders_canceled=len(kept.canceled), orders_kept=kept.kept
        )


def venue_services(runtime: VenueRuntime) -> list[Service]:
    return [
        Service(
            md.DESCRIPTOR.services_by_name["MarketData"].full_name,
            MarketDataService(runtime),
            _add_market_data,
        ),
        Service(
            tf.DESCRIPTOR.services_by_name["TradeFlow"].full_name,
            TradeFlowService(runtime),
            tf_grpc.add_TradeFlowServicer_to_server,
        ),
        Service(
            admin.DESCRIPTOR.services_by_name["Admin"].full_name,
            AdminService(runtime),
            admin_grpc.add_AdminServicer_to_server,
        ),
    ]
