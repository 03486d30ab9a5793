"""OKX USDT-margined perpetual swaps as ccxt.pro sees them (BTC-USDT-SWAP is BTC/USDT:USDT)."""

from __future__ import annotations

from trademesh.core.domain.model import Channel, InstrumentKind
from trademesh.venues.live.spec import LiveSpec
from trademesh.venues.okx.spec import (
    FUNDING_RATES,
    STOP_BOOK,
    STOP_STREAM,
    TRADE_HISTORY,
    okx_options,
    stop_params,
)
from trademesh.venues.okx_swap.exchange import DERIVATIVES, OkxSwapExchange
from trademesh.venues.okx_swap.margin import OkxSwapMargin

__all__ = ["SPEC"]

SPEC = LiveSpec(
    name="okx-swap",
    ccxt_id="okx",
    trade_history=TRADE_HISTORY,  # history-trades by time, as spot's
    kind=InstrumentKind.PERPETUAL,
    default_symbols=("BTC/USDT:USDT",),
    standin="trademesh.venues.okx_swap.standin",
    options=okx_options("swap"),
    ticker_method="watch_ticker",
    ticker_open=True,  # open24h, as spot's
    tickers_open=True,
    channels=(
        *(Channel.TRADES, Channel.BOOK, Channel.CANDLES, Channel.TICKERS, Channel.FUNDING),
        *(Channel.MARK, Channel.OPEN_INTEREST, Channel.LIQUIDATIONS),
    ),
    # The public mark-price, open-interest and liquidation-orders channels
    # (trademesh/venues/okx_swap/exchange.py).
    derivatives=DERIVATIVES,
    # The public `funding-rate` channel (ccxt watch_funding_rate): the rate of the coming funding
    # time (fundingRate, fundingTime), pushed every 30 to 90 s.
    funding_watch="watch_funding_rate",
    native_cancel_after=True,
    native_cancel_after_min_ms=10_000,  # timeOut is 0 (off) or 10 to 120 s
    client_order_id_field="clOrdId",
    # OkxExchange's full place answers, cancel-all, fill fees as costs; the derivatives channels.
    exchange_class=OkxSwapExchange,
    private_streams=True,  # the `orders` channel of the private WebSocket (watch_orders, watch_my_trades)
    book_checksum=True,  # `books` frames carry OKX's CRC32, verified by OkxExchange
    # Funding: GET /account/bills-archive (type 8), newest first, 100 a page; `after` (a billId)
    # asks for older bills.
    funding_page=100,
    funding_cursor="after",
    funding_rates=FUNDING_RATES,  # the bills carry no rate
    # Stops as OKX algo orders, like spot's (trademesh/venues/okx/spec.py); a reduce-only one stays so.
    stop_params=stop_params,
    stop_book=STOP_BOOK,
    stop_stream=STOP_STREAM,
    # POST /api/v5/trade/amend-order (ccxt edit_order): a live order's newSz and newPx in place
    # (its ordId and clOrdId stay); its algo (stop) orders are cancelled and replaced.
    amend_in_place=True,
    # The private `account` and `positions` channels (ccxt watch_balance, watch_positions).
    account_stream=True,
    # Leverage per instrument and mode, the mode sent as each order's tdMode, positions' margin
    # figures, full_liquidation orders (trademesh/venues/okx_swap/margin.py).
    margin=OkxSwapMargin(),
)
