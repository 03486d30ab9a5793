"""OKX spot as ccxt.pro sees it, and what trademesh chooses from it."""

from __future__ import annotations

from typing import Any

from trademesh.core.domain.matching.fees import FeeAsset
from trademesh.core.domain.model import InstrumentKind
from trademesh.venues.live.spec import FundingRateHistory, LiveSpec, TradeHistory
from trademesh.venues.okx.exchange import OkxExchange

__all__ = ["FUNDING_RATES", "SPEC", "STOP_BOOK", "STOP_STREAM", "TRADE_HISTORY", "okx_options", "stop_params"]

# OKX keeps stops as algo orders, apart from the other orders, with calls and ids of their own
# (algoId, algoClOrdId): ccxt reaches them with trigger=True in fetch_open_orders (GET
# /trade/orders-algo-pending?ordType=trigger), fetch_order (GET /trade/order-algo) and
# cancel_order (POST /trade/cancel-algos); OkxExchange's cancel_all_orders passes it on.
STOP_BOOK = {"trigger": True}
# Their changes come on the `orders-algo` channel of the business WebSocket (/ws/v5/business),
# which ccxt's watch_orders subscribes with trigger=True (the `orders` channel never carries them).
STOP_STREAM = {"trigger": True}


def stop_params(trigger: str) -> dict[str, Any]:
    """ccxt sends an order with a triggerPrice to POST /trade/order-algo as ordType "trigger",
    with triggerPx, orderPx ("-1" for a "market" order, else its price), sz, side, tdMode
    ("cash" on spot, "cross" on swaps) and reduceOnly as sent; OkxExchange sends the client id
    as algoClOrdId (ccxt would send clOrdId, which an algo order does not keep). triggerPxType
    "last" (passed through as OKX names it) triggers on the last trade price, not the mark or
    index price. OKX answers with an algoId, the order's id from then on. A trigger order has
    no direction (OKX reads it from the last price): OkxExchange refuses a stop the last price
    has already crossed, which OKX would hold for the opposite move."""
    return {"triggerPrice": trigger, "triggerPxType": "last"}


def funding_rates_until(end_ms: int) -> dict[str, Any]:
    """OKX's `after` asks for rates older than a funding time (ccxt passes it on as sent):
    one ms past end_ms includes it."""
    return {"after": str(end_ms + 1)}


# GET /api/v5/public/funding-rate-history (public, swaps): {"instType", "instId", "formulaType",
# "fundingRate", "realizedRate", "fundingTime", "method"}, strings, newest first, at most 400
# (limit); ccxt sends `since` as before (rates newer than since - 1). `realizedRate` is the
# rate settled at `fundingTime` (what ccxt reads too); `fundingRate` the one set beforehand.
FUNDING_RATES = FundingRateHistory(page=400, until=funding_rates_until, rate_field="realizedRate")


def okx_options(market_type: str) -> dict[str, Any]:
    """ccxt options for one OKX market type: load_markets asks /public/instruments for that type only."""
    return {
        "defaultType": market_type,
        "fetchMarkets": {"types": [market_type]},
        "fetchCurrencies": False,  # /asset/currencies is private; markets carry what we use
        # "books": 400 levels, snapshot then 100 ms updates linked by seqId/prevSeqId.
        # ccxt checks the seqId links; `checksum` is the conventional ccxt switch for CRC
        # validation (ccxt 4.5.90's okx handler does not read it yet).
        "watchOrderBook": {"depth": "books", "checksum": True},
        "watchTicker": {"channel": "tickers"},
        "watchTrades": {"channel": "trades"},
    }


# GET /api/v5/market/history-trades by time (type 2): the newest 100 between `before` and
# `after` (both excluded), newest first; GetTrades asks windows of it (trademesh/venues/live/trading.py).
TRADE_HISTORY = TradeHistory(
    page=100,
    params=lambda since_ms, until_ms: {
        "method": "publicGetMarketHistoryTrades",
        "type": "2",
        "before": str(since_ms - 1),
        "after": str(until_ms + 1),
    },
    window_ms=600_000,
    newest_first=True,
)

SPEC = LiveSpec(
    name="okx",
    ccxt_id="okx",
    trade_history=TRADE_HISTORY,
    kind=InstrumentKind.SPOT,
    # OKX's spot fee is deducted from the currency received: a buy's in the base, a sell's in
    # the quote.
    spot_fee_asset=FeeAsset.RECEIVED,
    default_symbols=("BTC/USDT",),
    standin="trademesh.venues.okx.standin",
    options=okx_options("spot"),
    ticker_method="watch_ticker",  # tickers channel: best bid/ask with sizes and the last trade
    ticker_open=True,  # open24h, the tickers channel's...
    tickers_open=True,  # ...and GET /market/tickers'
    native_cancel_after=True,  # POST /api/v5/trade/cancel-all-after (ccxt cancel_all_orders_after)
    native_cancel_after_min_ms=10_000,  # timeOut is 0 (off) or 10 to 120 s
    client_order_id_field="clOrdId",
    exchange_class=OkxExchange,  # full place answers, cancel-all, fill fees as costs
    private_streams=True,  # the `orders` channel of the private WebSocket (watch_orders, watch_my_trades)
    book_checksum=True,  # `books` frames carry OKX's CRC32, verified by OkxExchange
    stop_params=stop_params,
    stop_book=STOP_BOOK,
    stop_stream=STOP_STREAM,
    # POST /api/v5/trade/amend-order (ccxt edit_order): a live order's newSz and newPx in place
    # (its ordId and clOrdId stay); its algo (stop) orders are cancelled and replaced.
    amend_in_place=True,
    # The private `account` and `positions` channels (ccxt watch_balance, watch_positions).
    account_stream=True,
)
