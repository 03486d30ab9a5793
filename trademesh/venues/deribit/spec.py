"""Deribit as ccxt.pro sees it, and what trademesh chooses from it.

ccxt subscribes to Deribit's `100ms` channels (book.X.100ms, trades.X.100ms, ticker.X.100ms):
its `raw` ones need an authenticated connection. The ticker channel carries best bid/ask
with amounts and the last price, so tickers come from watch_ticker (watch_bids_asks would
use the `quote.X` channel instead).
"""

from __future__ import annotations

from typing import Any

from trademesh.core.domain.model import Channel, InstrumentKind
from trademesh.venues.deribit.exchange import DERIVATIVES, DeribitExchange
from trademesh.venues.deribit.margin import DeribitMargin
from trademesh.venues.deribit.sequence import DeribitBookSequence
from trademesh.venues.live.spec import LiveSpec, TradeHistory

__all__ = ["SPEC", "stop_params"]


def stop_params(trigger: str) -> dict[str, Any]:
    """ccxt's stopLossPrice makes the order type stop_market or stop_limit with trigger_price;
    `trigger=last_price` has Deribit watch the last trade (not the index or mark). A sell
    triggers at or below the trigger, a buy at or above. Untriggered, they are open orders
    (get_open_orders_by_instrument lists them, cancel cancels them)."""
    return {"stopLossPrice": trigger, "trigger": "last_price"}


SPEC = LiveSpec(
    name="deribit",
    ccxt_id="deribit",
    # public/get_last_trades_by_instrument_and_time, start to end, oldest first (sorting asc).
    trade_history=TradeHistory(
        page=1000, params=lambda since_ms, until_ms: {"until": until_ms, "sorting": "asc"}
    ),
    tickers_per_base=True,  # get_book_summary_by_currency: one currency (and kind) a call
    kind=InstrumentKind.PERPETUAL,
    default_symbols=("BTC/USD:BTC",),  # BTC-PERPETUAL, inverse, settled in BTC
    standin="trademesh.venues.deribit.standin",
    options={
        # One public/get_instruments call for every currency (ccxt's default).
        "fetchMarkets": {"fetchAllMarkets": True},
    },
    ticker_method="watch_ticker",
    channels=(
        *(Channel.TRADES, Channel.BOOK, Channel.CANDLES, Channel.TICKERS),
        *(Channel.MARK, Channel.OPEN_INTEREST),
    ),
    # Mark and index prices and open interest from the ticker stream (trademesh/venues/deribit/exchange.py).
    derivatives=DERIVATIVES,
    # ccxt 4.5 deribit has no cancelAllOrdersAfter (Deribit's cancel-on-disconnect is a
    # session setting, not a timer): the runtime's timer cancels all.
    native_cancel_after=False,
    client_order_id_field="label",
    # Deribit takes a second order with a label it already holds: look the label up first.
    unique_client_ids=False,
    # A snapshot starts the book afresh; clientOrderId is sent and read back as Deribit's label
    # (trademesh/venues/deribit/exchange.py).
    exchange_class=DeribitExchange,
    private_streams=True,  # user.orders / user.trades notifications after public/auth
    sequence_check=DeribitBookSequence,  # ccxt does not compare prev_change_id
    # BTC-PERPETUAL's amount is USD (min_trade_amount 10 = one 10 USD contract), as ccxt sends it.
    inverse_sized_in_quote=True,
    stop_params=stop_params,
    # No leverage to set (the account's equity backs its positions); positions' margin figures
    # as Deribit states them, its liquidation orders and trades (trademesh/venues/deribit/margin.py).
    margin=DeribitMargin(),
)
