"""Binance USD-M futures as ccxt.pro sees it (class `binanceusdm`), and what trademesh chooses from it."""

from __future__ import annotations

from core.model import InstrumentKind
from venues.live.spec import LiveSpec

__all__ = ["SPEC"]

SPEC = LiveSpec(
    name="binanceusdm",
    ccxt_id="binanceusdm",
    kind=InstrumentKind.PERPETUAL,
    default_symbols=("BTC/USDT:USDT",),
    standin="venues.binanceusdm.standin",
    options={
        "defaultType": "future",
        "fetchMarkets": {"types": ["linear"]},  # USD-M only (no COIN-M, no spot)
        "fetchCurrencies": False,  # needs SAPI permissions; markets carry what we use
        "watchTrades": {"name": "aggTrade"},  # one message per taker order, what the capture records
    },
    ticker_method="watch_bids_asks",  # bookTicker: real-time best bid/ask with sizes
    # ccxt 4.5 binanceusdm has no cancelAllOrdersAfter (fapi's countdownCancelAll is per symbol
    # and not unified): the runtime's timer cancels all.
    native_cancel_after=False,
    client_order_id_field="newClientOrderId",
    # ORDER_TRADE_UPDATE on the user data stream (a listenKey from POST /fapi/v1/listenKey).
    private_streams=True,
)
