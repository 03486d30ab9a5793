"""Conversions between trademesh.core.domain.model objects and the wire (protobuf) forms."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from trademesh.bus.v1 import bus_pb2 as bus
from trademesh.common.v1 import common_pb2 as common
from trademesh.core.domain.decimals import format_optional
from trademesh.core.domain.model import (
    Balance,
    Candle,
    Channel,
    Execution,
    Fill,
    FundingPayment,
    Instrument,
    InstrumentKind,
    LeverageSetting,
    Liquidity,
    MarginMode,
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
from trademesh.core.platform.errors import InvalidArgument
from trademesh.marketdata.v1 import marketdata_pb2 as md
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf

__all__ = [
    "CHANNEL_FROM_PB",
    "CHANNEL_TO_PB",
    "KIND_FROM_PB",
    "KIND_TO_PB",
    "MARGIN_MODE_FROM_PB",
    "MARGIN_MODE_TO_PB",
    "ORDER_TYPE_FROM_PB",
    "SIDE_FROM_PB",
    "SIDE_TO_PB",
    "TIF_FROM_PB",
    "TIMEFRAME_FROM_PB",
    "TIMEFRAME_TO_PB",
    "balance_to_pb",
    "candle_of",
    "candle_to_pb",
    "execution_to_pb",
    "fill_from_pb",
    "fill_to_pb",
    "finite_decimal",
    "funding_payment_to_pb",
    "instrument_to_pb",
    "leverage_from_pb",
    "leverage_to_pb",
    "order_from_pb",
    "order_request_to_pb",
    "order_to_pb",
    "position_from_pb",
    "position_to_pb",
]

SIDE_TO_PB = {Side.BUY: common.SIDE_BUY, Side.SELL: common.SIDE_SELL}
SIDE_FROM_PB = {v: k for k, v in SIDE_TO_PB.items()}
CHANNEL_TO_PB = {
    Channel.TRADES: md.CHANNEL_TRADES,
    Channel.BOOK: md.CHANNEL_BOOK,
    Channel.CANDLES: md.CHANNEL_CANDLES,
    Channel.TICKERS: md.CHANNEL_TICKERS,
    Channel.FUNDING: md.CHANNEL_FUNDING,
    Channel.MARK: md.CHANNEL_MARK,
    Channel.OPEN_INTEREST: md.CHANNEL_OPEN_INTEREST,
    Channel.LIQUIDATIONS: md.CHANNEL_LIQUIDATIONS,
}
CHANNEL_FROM_PB = {v: k for k, v in CHANNEL_TO_PB.items()}
TIMEFRAME_TO_PB = {
    Timeframe.S1: common.TIMEFRAME_1_SECOND,
    Timeframe.M1: common.TIMEFRAME_1_MINUTE,
    Timeframe.M5: common.TIMEFRAME_5_MINUTES,
    Timeframe.M15: common.TIMEFRAME_15_MINUTES,
    Timeframe.H1: common.TIMEFRAME_1_HOUR,
    Timeframe.H4: common.TIMEFRAME_4_HOURS,
    Timeframe.D1: common.TIMEFRAME_1_DAY,
    Timeframe.W1: common.TIMEFRAME_1_WEEK,
}
TIMEFRAME_FROM_PB = {v: k for k, v in TIMEFRAME_TO_PB.items()}
KIND_TO_PB = {
    InstrumentKind.SPOT: common.INSTRUMENT_KIND_SPOT,
    InstrumentKind.PERPETUAL: common.INSTRUMENT_KIND_PERPETUAL,
    InstrumentKind.FUTURE: common.INSTRUMENT_KIND_FUTURE,
    InstrumentKind.OPTION: common.INSTRUMENT_KIND_OPTION,
}
KIND_FROM_PB = {v: k for k, v in KIND_TO_PB.items()}
ORDER_TYPE_TO_PB = {
    OrderType.LIMIT: tf.ORDER_TYPE_LIMIT,
    OrderType.MARKET: tf.ORDER_TYPE_MARKET,
    OrderType.STOP_MARKET: tf.ORDER_TYPE_STOP_MARKET,
    OrderType.STOP_LIMIT: tf.ORDER_TYPE_STOP_LIMIT,
}
ORDER_TYPE_FROM_PB = {v: k for k, v in ORDER_TYPE_TO_PB.items()}
TIF_TO_PB = {
    TimeInForce.GTC: tf.TIME_IN_FORCE_GTC,
    TimeInForce.IOC: tf.TIME_IN_FORCE_IOC,
    TimeInForce.FOK: tf.TIME_IN_FORCE_FOK,
}
TIF_FROM_PB = {v: k for k, v in TIF_TO_PB.items()}
_STATUS_TO_PB = {
    OrderStatus.OPEN: tf.ORDER_STATUS_OPEN,
    OrderStatus.PARTIALLY_FILLED: tf.ORDER_STATUS_PARTIALLY_FILLED,
    OrderStatus.FILLED: tf.ORDER_STATUS_FILLED,
    OrderStatus.CANCELED: tf.ORDER_STATUS_CANCELED,
    OrderStatus.REJECTED: tf.ORDER_STATUS_REJECTED,
    OrderStatus.EXPIRED: tf.ORDER_STATUS_EXPIRED,
}
_STATUS_FROM_PB = {v: k for k, v in _STATUS_TO_PB.items()}
_LIQUIDITY_TO_PB = {Liquidity.MAKER: tf.LIQUIDITY_MAKER, Liquidity.TAKER: tf.LIQUIDITY_TAKER}
MARGIN_MODE_TO_PB = {MarginMode.CROSS: tf.MARGIN_MODE_CROSS, MarginMode.ISOLATED: tf.MARGIN_MODE_ISOLATED}
MARGIN_MODE_FROM_PB = {v: k for k, v in MARGIN_MODE_TO_PB.items()}


def instrument_to_pb(item: Instrument) -> common.Instrument:
    return common.Instrument(
        venue=item.venue,
        symbol=item.symbol,
        native_symbol=item.native_symbol,
        kind=KIND_TO_PB[item.kind],
        base_asset=item.base_asset,
        quote_asset=item.quote_asset,
        settle_asset=item.settle_asset,
        tick_size=format_optional(item.tick_size),
        lot_size=format_optional(item.lot_size),
        min_size=format_optional(item.min_size),
        min_notional=format_optional(item.min_notional),
        contract_size=format_optional(item.contract_size),
        active=item.active,
        contract_value=format_optional(item.contract_value),
        contract_value_asset=item.value_asset,
        maker_fee_rate=format_optional(item.maker_fee_rate),
        taker_fee_rate=format_optional(item.taker_fee_rate),
    )


def finite_decimal(name: str, text: str) -> Decimal:
    """A number of the wire read leniently (any spelling Decimal reads) but finite; InvalidArgument
    naming the field otherwise."""
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise InvalidArgument.field(name, f"{text[:32]!r} is not a number") from None
    if not value.is_finite():
        raise InvalidArgument.field(name, f"{text[:32]!r} is not a finite number")
    return value


def candle_of(bar: bus.Bar) -> Candle:
    """The closed Candle of a bus bar (the bar service publishes closed bars only); a bar that
    cannot be one (no timeframe, a price that is not a number) is InvalidArgument naming the field."""
    timeframe = TIMEFRAME_FROM_PB.get(bar.timeframe)
    if timeframe is None:
        raise InvalidArgument.field("timeframe", f"{bar.timeframe} is not a timeframe")
    values = {
        name: finite_decimal(name, getattr(bar, name)) for name in ("open", "high", "low", "close", "volume")
    }
    quote = finite_decimal("quote_volume", bar.quote_volume or "0")
    return Candle(timeframe, bar.open_time_ns, quote_volume=quote, trade_count=bar.trade_count, closed=True,
                  **values)  # fmt: skip


def candle_to_pb(candle: Candle) -> md.Candle:
    return md.Candle(
        timeframe=TIMEFRAME_TO_PB[candle.timeframe],
        open_time_ns=candle.open_time_ns,
        open=format_optional(candle.open),
        high=format_optional(candle.high),
        low=format_optional(candle.low),
        close=format_optional(candle.close),
        volume=format_optional(candle.volume),
        quote_volume=format_optional(candle.quote_volume),
        trade_count=candle.trade_count,
        closed=candle.closed,
    )


def order_to_pb(order: Order) -> tf.Order:
    return tf.Order(
        venue=order.venue,
        order_id=order.order_id,
        client_order_id=order.client_order_id,
        symbol=order.symbol,
        side=SIDE_TO_PB[order.side],
        type=ORDER_TYPE_TO_PB[order.type],
        time_in_force=TIF_TO_PB[order.time_in_force],
        post_only=order.post_only,
        reduce_only=order.reduce_only,
        price=format_optional(order.price),
        size=format_optional(order.size),
        filled_size=format_optional(order.filled_size),
        average_fill_price=format_optional(order.average_fill_price),
        status=_STATUS_TO_PB[order.status],
        status_reason=order.status_reason,
        created_ns=order.created_ns,
        updated_ns=order.updated_ns,
        trigger_price=format_optional(order.trigger_price),
        triggered=order.triggered,
        liquidation=order.liquidation,
    )


def _dec_or_none(text: str) -> Decimal | None:
    return Decimal(text) if text else None


def order_from_pb(message: tf.Order) -> Order:
    """The domain order of a venue's answer (KeyError on an enum value this code does not know)."""
    return Order(
        venue=message.venue,
        order_id=message.order_id,
        client_order_id=message.client_order_id,
        symbol=message.symbol,
        side=SIDE_FROM_PB[message.side],
        type=ORDER_TYPE_FROM_PB[message.type],
        time_in_force=TIF_FROM_PB[message.time_in_force],
        price=_dec_or_none(message.price),
        size=Decimal(message.size or "0"),
        post_only=message.post_only,
        reduce_only=message.reduce_only,
        filled_size=Decimal(message.filled_size or "0"),
        average_fill_price=_dec_or_none(message.average_fill_price),
        status=_STATUS_FROM_PB[message.status],
        status_reason=message.status_reason,
        created_ns=message.created_ns,
        updated_ns=message.updated_ns,
        trigger_price=_dec_or_none(message.trigger_price),
        triggered=message.triggered,
        liquidation=message.liquidation,
    )


def order_request_to_pb(request: OrderRequest) -> tf.PlaceOrderRequest:
    """The wire request of an order to place (trademesh.core.domain.order_rules.place_order reverses it)."""
    return tf.PlaceOrderRequest(
        symbol=request.symbol,
        side=SIDE_TO_PB[request.side],
        type=ORDER_TYPE_TO_PB[request.type],
        size=format_optional(request.size),
        price=format_optional(request.price),
        time_in_force=TIF_TO_PB[request.time_in_force],
        post_only=request.post_only,
        reduce_only=request.reduce_only,
        client_order_id=request.client_order_id,
        trigger_price=format_optional(request.trigger_price),
    )


def fill_to_pb(fill: Fill) -> tf.Fill:
    return tf.Fill(
        fill_id=fill.fill_id,
        order_id=fill.order_id,
        client_order_id=fill.client_order_id,
        symbol=fill.symbol,
        side=SIDE_TO_PB[fill.side],
        price=format_optional(fill.price),
        size=format_optional(fill.size),
        fee=format_optional(fill.fee),
        fee_asset=fill.fee_asset,
        liquidity=_LIQUIDITY_TO_PB[fill.liquidity],
        trade_id=fill.trade_id,
        ts_event_ns=fill.ts_event_ns,
        liquidation=fill.liquidation,
    )


def execution_to_pb(venue: str, execution: Execution) -> tf.Execution:
    message = tf.Execution(venue=venue, ts_event_ns=execution.ts_event_ns, order=order_to_pb(execution.order))
    if execution.fill is not None:
        message.fill.CopyFrom(fill_to_pb(execution.fill))
    return message


def balance_to_pb(balance: Balance) -> tf.Balance:
    return tf.Balance(
        asset=balance.asset,
        free=format_optional(balance.free),
        locked=format_optional(balance.locked),
        total=format_optional(balance.total),
        position_margin=format_optional(balance.position_margin),
    )


def position_to_pb(position: Position) -> tf.Position:
    message = tf.Position(
        symbol=position.symbol,
        size=format_optional(position.size),
        entry_price=format_optional(position.entry_price),
        realized_pnl=format_optional(position.realized_pnl),
    )
    margin = position.margin
    if margin is not None:
        message.settle_asset = margin.settle_asset
        message.leverage = format_optional(margin.leverage)
        message.mark_price = format_optional(margin.mark_price)
        message.initial_margin = format_optional(margin.initial_margin)
        message.maintenance_margin = format_optional(margin.maintenance_margin)
        message.margin_ratio = format_optional(margin.margin_ratio)
        message.unrealized_pnl = format_optional(margin.unrealized_pnl)
        message.liquidation_price = format_optional(margin.liquidation_price)
        if margin.mode is not None:
            message.margin_mode = MARGIN_MODE_TO_PB[margin.mode]
    return message


def position_from_pb(message: tf.Position) -> Position:
    """The domain position of a venue's answer; `margin` set when the venue reports a settle asset."""
    margin = None
    if message.settle_asset:
        margin = PositionMargin(
            settle_asset=message.settle_asset,
            leverage=_dec_or_none(message.leverage),
            mode=MARGIN_MODE_FROM_PB.get(message.margin_mode),
            mark_price=_dec_or_none(message.mark_price),
            initial_margin=_dec_or_none(message.initial_margin),
            maintenance_margin=_dec_or_none(message.maintenance_margin),
            margin_ratio=_dec_or_none(message.margin_ratio),
            unrealized_pnl=_dec_or_none(message.unrealized_pnl),
            liquidation_price=_dec_or_none(message.liquidation_price),
        )
    return Position(
        symbol=message.symbol,
        size=Decimal(message.size or "0"),
        entry_price=_dec_or_none(message.entry_price),
        realized_pnl=Decimal(message.realized_pnl or "0"),
        margin=margin,
    )


def leverage_to_pb(setting: LeverageSetting) -> tf.LeverageSetting:
    return tf.LeverageSetting(
        symbol=setting.symbol,
        leverage=format_optional(setting.leverage),
        margin_mode=MARGIN_MODE_TO_PB[setting.mode],
        max_leverage=format_optional(setting.max_leverage),
    )


def leverage_from_pb(message: tf.LeverageSetting) -> LeverageSetting:
    return LeverageSetting(
        symbol=message.symbol,
        leverage=Decimal(message.leverage),
        mode=MARGIN_MODE_FROM_PB[message.margin_mode],
        max_leverage=_dec_or_none(message.max_leverage),
    )


def funding_payment_to_pb(payment: FundingPayment) -> tf.FundingPayment:
    return tf.FundingPayment(
        funding_id=payment.funding_id,
        symbol=payment.symbol,
        asset=payment.asset,
        amount=format_optional(payment.amount),
        rate=format_optional(payment.rate),
        position_size=format_optional(payment.position_size),
        ts_ns=payment.ts_ns,
    )


# ---------------------------------------------------------------- from the wire (a venue's answers)

_LIQUIDITY_FROM_PB = {v: k for k, v in _LIQUIDITY_TO_PB.items()}


def fill_from_pb(message: tf.Fill) -> Fill:
    return Fill(
        fill_id=message.fill_id,
        order_id=message.order_id,
        client_order_id=message.client_order_id,
        symbol=message.symbol,
        side=SIDE_FROM_PB[message.side],
        price=Decimal(message.price),
        size=Decimal(message.size),
        fee=Decimal(message.fee or "0"),
        fee_asset=message.fee_asset,
        liquidity=_LIQUIDITY_FROM_PB.get(message.liquidity, Liquidity.TAKER),
        trade_id=message.trade_id,
        ts_event_ns=message.ts_event_ns,
        liquidation=message.liquidation,
    )
