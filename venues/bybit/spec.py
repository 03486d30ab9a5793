"""Bybit spot as ccxt.pro sees it, and what trademesh chooses from it."""

from __future__ import annotations

from core.model import InstrumentKind
from venues.bybit.exchange import BybitExchange
from venues.bybit.sequence import BybitBookSequence
from venues.live.spec import LiveSpec

__all__ = ["SPEC"]

SPEC = LiveSpec(
    name="bybit",
    ccxt_id="bybit",
    kind=InstrumentKind.SPOT,
    default_symbols=("BTC/USDT",),
    standin="venues.bybit.standin",
    options={
        "defaultType": "spot",
        "fetchMarkets": {
            "types": ["spot"]
        },  # one instruments-info call instead of spot+linear+inverse+options
        "fetchCurrencies": False,  # /v5/asset/coin/query-info needs credentials; markets carry what we use
    },
    # tickers.<symbol>: spot tickers carry last price and 24 h stats, no best bid/ask.
    ticker_method="watch_ticker",
    book_depth=None,  # ccxt's spot default: orderbook.50 (1, 50, 200 and 1000 are the venue's depths)
    native_cancel_after=True,  # /v5/order/disconnected-cancel-all (ccxt cancel_all_orders_after)
    native_cancel_after_min_ms=10_000,  # timeWindow: Bybit takes 3 to 300 s; 10 s (its default) is ours
    native_cancel_after_disarms=False,  # timeWindow 0 is refused: there is no "off" over the API
    client_order_id_field="orderLinkId",
    sequence_check=BybitBookSequence,  # ccxt's bybit client does not check update ids
    exchange_class=BybitExchange,  # full orders from create/cancel, fetch_order by orderLinkId
    private_streams=True,  # "order" and "execution" over wss://stream.bybit.com/v5/private
)
