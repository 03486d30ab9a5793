"""Protobuf answers as JSON-able dicts for tool results.

Prices, sizes and money stay the decimal strings of the wire (never floats); times are given
both as int nanoseconds (exact) and as ISO 8601 UTC (readable); enums as short lower-case words.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from trademesh.admin.v1 import admin_pb2 as admin
from trademesh.common.v1 import common_pb2 as common
from trademesh.marketdata.v1 import marketdata_pb2 as md
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf

__all__ = [
    "balance",
    "enum_word",
    "instrument",
    "iso_time",
    "margin_mode",
    "order",
    "position",
    "price",
    "status",
]

Json = dict[str, Any]


def iso_time(ns: int) -> str | None:
    """ISO 8601 UTC with microseconds; None for 0 (the wire's "not set")."""
    if ns <= 0:
        return None
    seconds, rest = divmod(ns, 1_000_000_000)
    moment = datetime.fromtimestamp(seconds, UTC).replace(microsecond=rest // 1000)
    return moment.isoformat().replace("+00:00", "Z")


def enum_word(name_of: Callable[[Any], str], value: int, prefix: str) -> str:
    """TIME_IN_FORCE_GTC -> "gtc"; an unknown value stays a number, so nothing is hidden."""
    try:
        name = name_of(value)
    except ValueError:
        return str(value)
    return name.removeprefix(prefix).lower()


def instrument(item: common.Instrument) -> Json:
    return {
        "symbol": item.symbol,
        "native_symbol": item.native_symbol,
        "kind": enum_word(common.InstrumentKind.Name, item.kind, "INSTRUMENT_KIND_"),
        "base_asset": item.base_asset,
        "quote_asset": item.quote_asset,
        "settle_asset": item.settle_asset,
        "tick_size": item.tick_size,
        "lot_size": item.lot_size,
        "min_size": item.min_size,
        "min_notional": item.min_notional,
        "contract_size": item.contract_size,
        "contract_value": item.contract_value,
        "contract_value_asset": item.contract_value_asset,
        "maker_fee_rate": item.maker_fee_rate or None,
        "taker_fee_rate": item.taker_fee_rate or None,
        "active": item.active,
    }


def order(item: tf.Order) -> Json:
    return {
        "order_id": item.order_id,
        "client_order_id": item.client_order_id,
        "symbol": item.symbol,
        "side": enum_word(common.Side.Name, item.side, "SIDE_"),
        "type": enum_word(tf.OrderType.Name, item.type, "ORDER_TYPE_"),
        "time_in_force": enum_word(tf.TimeInForce.Name, item.time_in_force, "TIME_IN_FORCE_"),
        "post_only": item.post_only,
        "reduce_only": item.reduce_only,
        "price": item.price or None,
        "size": item.size,
        "filled_size": item.filled_size,
        "average_fill_price": item.average_fill_price or None,
        "trigger_price": item.trigger_price or None,  # stop orders only
        "triggered": item.triggered,
        # The venue's own order closing a position by liquidation (client_order_id "liq-...").
        "liquidation": item.liquidation,
        "status": enum_word(tf.OrderStatus.Name, item.status, "ORDER_STATUS_"),
        "created_ns": item.created_ns,
        "created": iso_time(item.created_ns),
        "updated_ns": item.updated_ns,
        "updated": iso_time(item.updated_ns),
    }


def margin_mode(value: int) -> str | None:
    """MARGIN_MODE_CROSS -> "cross"; None when the venue did not say (spot)."""
    return (
        None if value == tf.MARGIN_MODE_UNSPECIFIED else enum_word(tf.MarginMode.Name, value, "MARGIN_MODE_")
    )


def position(item: tf.Position) -> Json:
    """A venue's position; a derivatives one with its margin figures (docs/derivatives.md, "Margin and
    liquidation"), each null where the venue does not say and for spot."""
    return {
        "symbol": item.symbol,
        "size": item.size,
        "entry_price": item.entry_price or None,
        "realized_pnl": item.realized_pnl,
        "mark_price": item.mark_price or None,
        "leverage": item.leverage or None,
        "margin_mode": margin_mode(item.margin_mode),
        "initial_margin": item.initial_margin or None,
        "maintenance_margin": item.maintenance_margin or None,
        "margin_ratio": item.margin_ratio or None,
        "unrealized_pnl": item.unrealized_pnl or None,
        "liquidation_price": item.liquidation_price or None,
        "settle_asset": item.settle_asset or None,
    }


def balance(item: tf.Balance) -> Json:
    return {
        "asset": item.asset,
        "free": item.free,
        "locked": item.locked,
        "total": item.total,
        # Of locked, the initial margin the open derivatives positions hold (null: not said).
        "position_margin": item.position_margin or None,
    }


def _stream(item: admin.StreamStatus) -> Json:
    return {
        "symbol": item.symbol,
        "channel": enum_word(md.Channel.Name, item.channel, "CHANNEL_"),
        "state": enum_word(admin.StreamState.Name, item.state, "STREAM_STATE_"),
        # A rate, not money: a float is the right type here.
        "events_per_s": round(item.events_per_s, 3),
        "events_total": item.events_total,
        "last_event_age_ms": item.last_event_age_ms if item.last_event_age_ms >= 0 else None,
        "subscribers": item.subscriber_count,
        "reconnects": item.reconnects,
        "resyncs": item.resyncs,
        "rate_limit_hits": item.rate_limit_hits,
        "malformed_messages": item.malformed_messages,
        # Read by REST this often, not streamed (a funding rate where the venue streams none).
        "poll_interval_ms": item.poll_interval_ms or None,
    }


def status(item: admin.GetStatusResponse) -> Json:
    dead_man = item.dead_man
    return {
        "venue": item.venue,
        "state": enum_word(admin.VenueState.Name, item.state, "VENUE_STATE_"),
        "started": iso_time(item.started_ns),
        "subscribers": item.subscriber_count,
        "dead_man_switch": {
            "armed": dead_man.armed,
            "ttl_ms": dead_man.ttl_ms,
            "trips": dead_man.trips,
            # A trip cancels what could open or add to a position and keeps the reduce-only orders.
            "keeps_reduce_only": dead_man.keeps_reduce_only,
            "exchange_switch": {"armed": dead_man.native.armed, "detail": dead_man.native.detail},
        },
        # False: the venue refuses stop orders and Inspector emulates them.
        "stop_orders": item.capabilities.stop_orders,
        # "native": AmendOrder changes an order in place; "cancel_replace": it replaces it.
        "amend": enum_word(admin.AmendMode.Name, item.capabilities.amend, "AMEND_MODE_"),
        # "push": the account stream hears the venue's changes; "poll": it reads the account.
        "account_feed": enum_word(admin.AccountFeed.Name, item.capabilities.account_feed, "ACCOUNT_FEED_"),
        "streams": [_stream(stream) for stream in item.streams],
    }


def price(item: md.SymbolTicker) -> Json:
    """One symbol's latest ticker (MarketData GetTickers) as market_prices shows it: decimal
    strings as the venue gave them, null where it does not say."""
    t = item.ticker
    return {
        "symbol": item.symbol,
        "last": t.last_price or None,
        "bid": t.best_bid or None,
        "ask": t.best_ask or None,
        "bid_size": t.best_bid_size or None,
        "ask_size": t.best_ask_size or None,
        "volume_24h": t.quote_volume_24h or None,
        "base_volume_24h": t.base_volume_24h or None,
        # The price 24 hours ago as the venue states it (its 24h change is last - open_24h).
        "open_24h": t.open_24h or None,
        "time": iso_time(item.ts_event_ns),
        "ts_event_ns": item.ts_event_ns or None,
    }
