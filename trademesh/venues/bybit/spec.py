"""Bybit spot as ccxt.pro sees it, and what trademesh chooses from it."""

from __future__ import annotations

from typing import Any

from trademesh.core.domain.matching.fees import FeeAsset
from trademesh.core.domain.model import InstrumentKind
from trademesh.venues.bybit.exchange import BybitExchange
from trademesh.venues.bybit.sequence import BybitBookSequence
from trademesh.venues.live.spec import LiveSpec

__all__ = ["SPEC", "STOP_BOOK", "stop_params"]

# Bybit spot keeps conditional orders (orderFilter=StopOrder) apart where it cancels: POST
# /v5/order/cancel and /v5/order/cancel-all reach them only with orderFilter=StopOrder (spot's
# default is Order), which ccxt sends for trigger=True; fetch_open_orders and fetch_order take
# it too (GET /v5/order/realtime). A unified account's realtime list holds every kind of order
# when no orderFilter is sent: BybitExchange lists the ordinary book with orderFilter=Order, so
# that the connector's two books do not both list a stop.
STOP_BOOK = {"trigger": True}


def stop_params(trigger: str) -> dict[str, Any]:
    """ccxt sends a spot order with a triggerPrice to POST /v5/order/create as a conditional
    order: orderFilter=StopOrder, triggerPrice, orderType Market (qty in the base coin,
    marketUnit=baseCoin) or Limit (with its price), the client id as orderLinkId. Bybit spot
    conditional orders trigger on the last traded price; triggerBy and triggerDirection are
    for linear and inverse contracts only (ccxt refuses a triggerDirection on spot). Bybit
    spot takes the direction from the last price when the order is placed (a trigger above it
    waits for a rise, below it for a fall) and refuses no trigger: BybitExchange refuses a
    stop the last price has already crossed, which Bybit would hold the other way round."""
    return {"triggerPrice": trigger}


SPEC = LiveSpec(
    name="bybit",
    ccxt_id="bybit",
    kind=InstrumentKind.SPOT,
    # Bybit's spot fee is taken from the asset received: a buy's in the base coin, a sell's in
    # the quote.
    spot_fee_asset=FeeAsset.RECEIVED,
    default_symbols=("BTC/USDT",),
    standin="trademesh.venues.bybit.standin",
    options={
        "defaultType": "spot",
        "fetchMarkets": {
            "types": ["spot"]
        },  # one instruments-info call instead of spot+linear+inverse+options
        "fetchCurrencies": False,  # /v5/asset/coin/query-info needs credentials; markets carry what we use
    },
    # tickers.<symbol>: spot tickers carry last price and 24 h stats, no best bid/ask.
    ticker_method="watch_ticker",
    ticker_open=True,  # prevPrice24h, the stream's...
    tickers_open=True,  # ...and GET /v5/market/tickers'
    book_depth=None,  # ccxt's spot default: orderbook.50 (1, 50, 200 and 1000 are the venue's depths)
    native_cancel_after=True,  # /v5/order/disconnected-cancel-all (ccxt cancel_all_orders_after)
    native_cancel_after_min_ms=10_000,  # timeWindow: Bybit takes 3 to 300 s; 10 s (its default) is ours
    # timeWindow 0 is refused: there is no "off" over the API, so the runtime never arms it (it
    # would take the protection at the next disconnection).
    native_cancel_after_disarms=False,
    client_order_id_field="orderLinkId",
    sequence_check=BybitBookSequence,  # ccxt's bybit client does not check update ids
    exchange_class=BybitExchange,  # full orders from create/cancel, fetch_order by orderLinkId
    private_streams=True,  # "order" and "execution" over wss://stream.bybit.com/v5/private
    stop_params=stop_params,
    stop_book=STOP_BOOK,
)
