"""Binance spot as ccxt.pro sees it, and what trademesh chooses from it."""

from __future__ import annotations

from typing import Any

from trademesh.core.domain.matching.fees import FeeAsset
from trademesh.core.domain.model import InstrumentKind
from trademesh.venues.binance.wire import BinanceWire
from trademesh.venues.live.spec import LiveSpec, TradeHistory

__all__ = ["SPEC", "stop_params"]


def stop_params(trigger: str) -> dict[str, Any]:
    """ccxt sends a spot order with a triggerPrice as STOP_LOSS (market) or STOP_LOSS_LIMIT with
    stopPrice: Binance triggers a sell at a last trade at or below it, a buy at or above it (and
    refuses one whose stopPrice the market has already crossed: -2010 "would trigger
    immediately"). Both are ordinary orders: openOrders lists them, DELETE /order cancels them."""
    return {"triggerPrice": trigger}


SPEC = LiveSpec(
    name="binance",
    ccxt_id="binance",
    # GET /api/v3/aggTrades from startTime, an hour at most a call (ccxt: since .. since + 1 h).
    trade_history=TradeHistory(
        page=1000, params=lambda since_ms, until_ms: {"until": until_ms}, window_ms=3_600_000
    ),
    # GET /api/v3/klines read as Binance writes them: their quote volume and trade count kept.
    klines_method="publicGetKlines",
    kind=InstrumentKind.SPOT,
    # Binance takes a spot fee from the asset the fill brings in (a buy's in the base bought),
    # unless the account pays it in BNB at a discount (not modelled).
    spot_fee_asset=FeeAsset.RECEIVED,
    default_symbols=("BTC/USDT",),
    standin="trademesh.venues.binance.standin",
    options={
        "defaultType": "spot",
        "fetchMarkets": {"types": ["spot"]},
        "fetchCurrencies": False,  # needs SAPI permissions; markets carry what we use
        "fetchMargins": False,  # margin pairs: we trade spot only
        "watchTrades": {"name": "aggTrade"},  # one message per taker order, what the capture records
    },
    ticker_method="watch_bids_asks",  # bookTicker: real-time best bid/ask with sizes
    tickers_open=True,  # GET /ticker/24hr's openPrice (GetTickers; the bookTicker stream states none)
    native_cancel_after=False,  # spot has no cancel-after: the runtime's timer cancels all
    client_order_id_field="newClientOrderId",
    private_streams=True,  # executionReport over the WebSocket API's user data stream
    stop_params=stop_params,
    wire=BinanceWire,  # public market-data frames from the wire, not through ccxt's caches
)
