"""OKX spot as ccxt.pro sees it, and what trademesh chooses from it."""

from __future__ import annotations

from typing import Any

from core.model import InstrumentKind
from venues.live.spec import LiveSpec
from venues.okx.exchange import OkxExchange

__all__ = ["SPEC", "okx_options"]


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


SPEC = LiveSpec(
    name="okx",
    ccxt_id="okx",
    kind=InstrumentKind.SPOT,
    default_symbols=("BTC/USDT",),
    standin="venues.okx.standin",
    options=okx_options("spot"),
    ticker_method="watch_ticker",  # tickers channel: best bid/ask with sizes and the last trade
    native_cancel_after=True,  # POST /api/v5/trade/cancel-all-after (ccxt cancel_all_orders_after)
    native_cancel_after_min_ms=10_000,  # timeOut is 0 (off) or 10 to 120 s
    client_order_id_field="clOrdId",
    exchange_class=OkxExchange,  # full place answers, cancel-all, fill fees as costs
    private_streams=True,  # the `orders` channel of the private WebSocket (watch_orders, watch_my_trades)
    book_checksum=True,  # `books` frames carry OKX's CRC32, verified by OkxExchange
)
