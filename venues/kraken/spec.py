"""Kraken spot as ccxt.pro sees it, and what trademesh chooses from it.

Kraken names a pair three ways: the REST id ("XXBTZCHF" / altname "XBTCHF"), the v1
WebSocket and AssetPairs `wsname` ("XBT/CHF"), and WebSocket v2's symbol ("BTC/CHF",
the same as ccxt's unified symbol). The native symbol trademesh lists is the wsname:
Kraken's own human name for the pair, and the one its recorded sessions carry.

Order-book checksums: ccxt.pro kraken 4.5.90 can verify v2's CRC32 (option
watchOrderBook.checksum) but its `format_number` is handed the book's floats and
calls `.split` on them, so enabling the option fails on every book frame. `KrakenChecked`
formats each float to the pair's decimals (AssetPairs pair_decimals for prices,
lot_decimals for sizes, as Kraken's checksum is defined) before ccxt's own formatting;
with it a dropped book update is caught as a ChecksumError and the book re-subscribed.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from core.model import InstrumentKind
from venues.kraken.exchange import KrakenExchange
from venues.kraken.replay import KrakenReplay
from venues.live.spec import LiveSpec, Market

__all__ = ["SPEC", "KrakenChecked", "wsname"]


class KrakenChecked(KrakenExchange):
    """ccxt.pro kraken whose v2 book checksum works on the floats its book holds (and whose trading
    is mended: venues/kraken/exchange.py).

    ccxt's handle_order_book formats, for each of the 10 best asks then bids, the price and
    then the qty; the pair's decimals for the frame being handled are set here first.
    """

    _checksum_decimals: tuple[int, int] | None = None
    _checksum_calls = 0

    def handle_order_book(self, client: Any, message: Any) -> Any:
        data = message.get("data") or [{}] if isinstance(message, dict) else [{}]
        market = (self.markets or {}).get((data[0] or {}).get("symbol"))
        info = market.get("info", {}) if market else {}
        self._checksum_decimals = (
            (int(info["pair_decimals"]), int(info["lot_decimals"]))
            if "pair_decimals" in info and "lot_decimals" in info
            else None
        )
        self._checksum_calls = 0
        return super().handle_order_book(client, message)

    def format_number(self, data: Any) -> str:
        if not isinstance(data, str):
            index = self._checksum_calls % 2  # price, qty, price, qty...
            self._checksum_calls += 1
            text = Decimal(repr(float(data)))
            if self._checksum_decimals is not None:
                text = text.quantize(Decimal(1).scaleb(-self._checksum_decimals[index]), ROUND_HALF_EVEN)
            data = format(text, "f")
        return str(super().format_number(data))


# venues.live.exchange looks the class up by name in ccxt.pro.


def wsname(market: Market) -> str:
    """Kraken's wsname ("XBT/CHF"), falling back to ccxt's id for markets without one."""
    info = market.get("info") or {}
    return str(info.get("wsname") or market["id"])


SPEC = LiveSpec(
    name="kraken",
    ccxt_id="kraken",
    exchange_class=KrakenChecked,
    kind=InstrumentKind.SPOT,
    default_symbols=("BTC/USDT",),
    replay_adapter=KrakenReplay,
    options={
        # v2 checksums (see KrakenChecked); maxRetries as venues.live.exchange sets it by default,
        # restated because this dict replaces the default watchOrderBook options.
        "watchOrderBook": {"checksum": True, "maxRetries": 1},
        # A WebSocket message costs a whole REST token by default (Kraken's rateLimit is 1000 ms),
        # so 40 subscriptions took 40 s; 0.01 sends up to 100 a second on each connection.
        "ws": {"cost": 0.01},
    },
    native_symbol=wsname,
    # The capture subscribed depth 1000; Kraken's default of 10 levels is too thin to trade on.
    book_depth=1000,
    native_cancel_after=True,  # ccxt cancel_all_orders_after: Kraken's CancelAllOrdersAfter
    # Its timeout is in whole seconds (ccxt truncates the ms): under 1 s it would read as 0, "off".
    native_cancel_after_min_ms=1_000,
    has_sandbox=False,
    client_order_id_field="cl_ord_id",
    private_streams=True,  # WebSocket v2 `executions` on ws-auth (watch_orders, watch_my_trades)
)
