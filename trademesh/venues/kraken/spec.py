"""Kraken spot as ccxt.pro sees it, and what trademesh chooses from it.

Kraken names a pair three ways: the REST id ("XXBTZCHF" / altname "XBTCHF"), the v1
WebSocket and AssetPairs `wsname` ("XBT/CHF"), and WebSocket v2's symbol ("BTC/CHF",
the same as ccxt's unified symbol). The native symbol trademesh lists is the wsname:
Kraken's own human name for the pair, and the one its recorded sessions carry.

ccxt falls short on book checksums and on trading: trademesh/venues/kraken/exchange.py mends both.
Public market data is taken from the wire before ccxt's handler (trademesh/venues/kraken/wire.py), which
checks the book checksums itself and fails ccxt's book watch on a mismatch as ccxt would.
"""

from __future__ import annotations

from typing import Any

from trademesh.core.domain.matching.fees import FeeAsset
from trademesh.core.domain.model import InstrumentKind, Timeframe
from trademesh.venues.kraken.exchange import KrakenExchange
from trademesh.venues.kraken.wire import KrakenWire, wsname
from trademesh.venues.live.spec import LiveSpec, TradeHistory

__all__ = ["SPEC", "stop_params", "wsname"]


def stop_params(trigger: str) -> dict[str, Any]:
    """ccxt's stopLossPrice makes AddOrder's ordertype stop-loss (price = the trigger) or, for a
    limit order, stop-loss-limit (price2 = the limit); `trigger=last` has Kraken watch the last
    trade price instead of its default index. A sell triggers at or below the trigger, a buy at
    or above. They are ordinary orders: OpenOrders lists them, CancelOrder cancels them."""
    return {"stopLossPrice": trigger, "trigger": "last"}


SPEC = LiveSpec(
    name="kraken",
    ccxt_id="kraken",
    # GET /0/public/Trades from `since` (seconds) on, up to 1000 (`count`), oldest first.
    trade_history=TradeHistory(page=1000, params=lambda since_ms, until_ms: {}),
    exchange_class=KrakenExchange,  # trading mended, v2 book checksums that work
    kind=InstrumentKind.SPOT,
    # Kraken charges a spot fee in the quote currency by default (AddOrder's oflags fcib/fciq
    # choose; we send neither).
    spot_fee_asset=FeeAsset.QUOTE,
    default_symbols=("BTC/USDT",),
    standin="trademesh.venues.kraken.standin",
    options={
        # v2 checksums (see trademesh/venues/kraken/exchange.py); maxRetries as
        # trademesh.venues.live.exchange sets it by default, restated because this dict
        # replaces the default watchOrderBook options.
        "watchOrderBook": {"checksum": True, "maxRetries": 1},
        # A WebSocket message costs a whole REST token by default (Kraken's rateLimit is 1000 ms),
        # so 40 subscriptions took 40 s; 0.01 sends up to 100 a second on each connection.
        "ws": {"cost": 0.01},
    },
    native_symbol=wsname,
    # The capture subscribed depth 1000; Kraken's default of 10 levels is too thin to trade on.
    book_depth=1000,
    book_checksum=True,  # v2 book frames carry a CRC32 of the best 10 levels (the wire tap verifies it)
    native_cancel_after=True,  # ccxt cancel_all_orders_after: Kraken's CancelAllOrdersAfter
    # Its timeout is in whole seconds (ccxt truncates the ms): under 1 s it would read as 0, "off".
    native_cancel_after_min_ms=1_000,
    has_sandbox=False,
    client_order_id_field="cl_ord_id",
    private_streams=True,  # WebSocket v2 `executions` on ws-auth (watch_orders, watch_my_trades)
    stop_params=stop_params,
    wire=KrakenWire,  # public market-data frames from the wire, not through ccxt's caches
    # The ticker stream's 24h open: its last price less its 24h change (the wire's and ccxt's);
    # GetTickers' REST `o` is today's open (since 00:00 UTC), not the price 24 h ago: none.
    ticker_open=True,
    # Its 10080-minute candles open on the epoch's grid (Thursdays), not on Mondays.
    off_grid=(Timeframe.W1,),
)
