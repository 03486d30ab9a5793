"""Coinbase Advanced Trade spot as ccxt.pro sees it, and what trademesh chooses from it."""

from __future__ import annotations

from trademesh.core.domain.matching.fees import FeeAsset
from trademesh.core.domain.model import Channel, InstrumentKind
from trademesh.venues.coinbase.exchange import CoinbaseExchange
from trademesh.venues.coinbase.sequence import CoinbaseSequence
from trademesh.venues.live.spec import LiveSpec, TradeHistory

__all__ = ["SPEC"]

SPEC = LiveSpec(
    name="coinbase",
    ccxt_id="coinbase",
    # GET /api/v3/brokerage/market/products/{id}/ticker with start and end (whole seconds, end
    # excluded): the newest `limit` (up to 1000) of that window, newest first; GetTrades asks
    # windows of it (trademesh/venues/live/trading.py).
    trade_history=TradeHistory(
        page=1000,
        params=lambda since_ms, until_ms: {"until": until_ms + 1},
        window_ms=3_600_000,
        newest_first=True,
        unit_ms=1000,
    ),
    kind=InstrumentKind.SPOT,
    # Coinbase Advanced Trade charges every fee in the quote currency.
    spot_fee_asset=FeeAsset.QUOTE,
    default_symbols=("BTC/USD",),
    standin="trademesh.venues.coinbase.standin",
    # ccxt's defaults (fetchMarketsV3: public products; unauthenticated market data), but balances
    # from Advanced Trade's own accounts (v3), not the v2 retail wallet API.
    options={"fetchBalance": "v3PrivateGetBrokerageAccounts"},
    ticker_method="watch_ticker",  # the ticker channel carries best bid/ask with sizes and the last price
    # ccxt.pro coinbase has no watch_ohlcv (has["watchOHLCV"] is False): no candle streams.
    channels=(Channel.TRADES, Channel.BOOK, Channel.TICKERS),
    native_cancel_after=False,  # no cancel-after on Coinbase: the runtime's timer cancels all
    has_sandbox=False,  # ccxt coinbase has no urls["test"]: set_sandbox_mode raises
    client_order_id_field="client_order_id",
    sequence_check=CoinbaseSequence,  # ccxt does not read sequence_num
    exchange_class=CoinbaseExchange,  # client order ids, full order answers, fills from `user`
    private_streams=True,  # the `user` channel (JWT auth): order updates, fills derived from them
)
