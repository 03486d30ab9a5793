"""Binance USD-M futures as ccxt.pro sees it (class `binanceusdm`), and what trademesh chooses from it."""

from __future__ import annotations

from typing import Any

from trademesh.core.domain.model import Channel, InstrumentKind
from trademesh.venues.binanceusdm.exchange import DERIVATIVES, BinanceUsdmExchange
from trademesh.venues.binanceusdm.margin import BinanceUsdmMargin
from trademesh.venues.live.spec import FundingRateHistory, LiveSpec, TradeHistory

__all__ = ["FUNDING_RATES", "SPEC", "STOP_BOOK", "stop_params"]

# ccxt 4.5 sends a USD-M order with a trigger to Binance's algo service (POST /fapi/v1/algoOrder,
# algoType CONDITIONAL: /fapi/v1/order refuses stop types since December 2025, -4120); such
# orders are kept apart: fetch_open_orders, fetch_order, cancel_order and cancel_all_orders
# reach them with trigger=True (/fapi/v1/openAlgoOrders, algoOrder, algoOpenOrders).
STOP_BOOK = {"trigger": True}


def stop_params(trigger: str) -> dict[str, Any]:
    """ccxt sends a "market" order with a triggerPrice as type STOP_MARKET and a "limit" one as
    STOP (with its price), the trigger as triggerPrice and clientAlgoId for the client id;
    workingType CONTRACT_PRICE makes Binance trigger on the last trade price (a sell at or
    below it, a buy at or above it), not the mark price. Binance refuses a stop its market has
    already crossed (-2021 "Order would immediately trigger."); reduceOnly goes as sent."""
    return {"triggerPrice": trigger, "workingType": "CONTRACT_PRICE"}


def funding_rates_until(end_ms: int) -> dict[str, Any]:
    """ccxt sends its unified `until` as endTime (ms, included)."""
    return {"until": end_ms}


# GET /fapi/v1/fundingRate (public): {"symbol", "fundingRate", "fundingTime", "markPrice"} from
# startTime to endTime (both included), oldest first, at most 1000 (limit); `fundingRate` is the
# rate settled at `fundingTime`, which Binance stamps a few ms after the hour at times.
FUNDING_RATES = FundingRateHistory(page=1000, until=funding_rates_until, rate_field="fundingRate")


SPEC = LiveSpec(
    name="binanceusdm",
    ccxt_id="binanceusdm",
    # GET /fapi/v1/aggTrades from startTime, an hour at most a call (ccxt: since .. since + 1 h).
    trade_history=TradeHistory(
        page=1000, params=lambda since_ms, until_ms: {"until": until_ms}, window_ms=3_600_000
    ),
    # GET /fapi/v1/klines read as Binance writes them: their quote volume and trade count kept.
    klines_method="fapiPublicGetKlines",
    kind=InstrumentKind.PERPETUAL,
    default_symbols=("BTC/USDT:USDT",),
    standin="trademesh.venues.binanceusdm.standin",
    options={
        "defaultType": "future",
        "fetchMarkets": {"types": ["linear"]},  # USD-M only (no COIN-M, no spot)
        "fetchCurrencies": False,  # needs SAPI permissions; markets carry what we use
        "watchTrades": {"name": "aggTrade"},  # one message per taker order, what the capture records
        # watch_ticker subscribes watch_tickers' stream, a miniTicker unless named: the full
        # <symbol>@ticker (24hrTicker) states the 24h volume and the last trade's quantity too.
        "watchTickers": {"name": "ticker"},
        # GET /fapi/v2/positionRisk: the position's leverage and marginType with its margin
        # figures (v3 states neither; trademesh/venues/binanceusdm/margin.py).
        "fetchPositionsRisk": {"useV2": True},
    },
    ticker_method="watch_bids_asks",  # bookTicker: real-time best bid/ask with sizes...
    ticker_stats=True,  # ...and no volume: <symbol>@ticker (24hrTicker) streams the 24h volume beside
    ticker_open=True,  # 24hrTicker's o...
    tickers_open=True,  # ...and GET /fapi/v1/ticker/24hr's openPrice
    channels=(
        *(Channel.TRADES, Channel.BOOK, Channel.CANDLES, Channel.TICKERS, Channel.FUNDING),
        *(Channel.MARK, Channel.OPEN_INTEREST, Channel.LIQUIDATIONS),
    ),
    # Mark and index prices from the mark price stream, open interest polled (GET
    # /fapi/v1/openInterest), liquidations from <symbol>@forceOrder
    # (trademesh/venues/binanceusdm/exchange.py).
    derivatives=DERIVATIVES,
    # <symbol>@markPrice@1s: the funding rate (r), the next funding time (T), mark and index
    # prices, every second; BinanceUsdmExchange keeps them as funding rates, not tickers.
    funding_watch="watch_mark_price",
    exchange_class=BinanceUsdmExchange,
    # ccxt 4.5 binanceusdm has no cancelAllOrdersAfter (fapi's countdownCancelAll is per symbol
    # and not unified): the runtime's timer cancels all.
    native_cancel_after=False,
    client_order_id_field="newClientOrderId",
    # ORDER_TRADE_UPDATE on the user data stream (a listenKey from POST /fapi/v1/listenKey).
    private_streams=True,
    funding_page=1000,  # GET /fapi/v1/income takes limit up to 1000
    funding_rates=FUNDING_RATES,  # the income carries no rate
    stop_params=stop_params,
    stop_book=STOP_BOOK,
    # PUT /fapi/v1/order (ccxt edit_order): a limit order's price and quantity in place; Binance
    # keeps its queue place for a quantity decrease at the same price only. Its algo (stop)
    # orders are not modified there: cancel and replace.
    amend_in_place=True,
    # ACCOUNT_UPDATE on the listenKey stream (ccxt watch_balance, watch_positions).
    account_stream=True,
    # Leverage and margin type per symbol, positionRisk's margin figures, LIQUIDATION orders.
    margin=BinanceUsdmMargin(),
)
