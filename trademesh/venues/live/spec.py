"""What a live venue folder declares about its exchange (its spec.py holds one LiveSpec)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from trademesh.core.domain.matching.fees import FeeAsset
from trademesh.core.domain.model import Channel, InstrumentKind, Timeframe
from trademesh.venues.live.derivatives import DerivativeStreams

if TYPE_CHECKING:
    from trademesh.venues.live.margin import MarginRules
    from trademesh.venues.live.wire import WireTap

__all__ = ["FundingRateHistory", "LiveSpec", "Market", "SequenceBreak", "SequenceCheck", "TradeHistory"]

# A ccxt market structure (ccxt's own dict).
Market = Mapping[str, Any]


def _ccxt_id(market: Market) -> str:
    return str(market["id"])


@dataclass(frozen=True)
class SequenceBreak:
    """A venue frame that must not reach the book: it follows a missed update."""

    native_symbol: str  # "": every book on the frame's connection (the venue numbers whole connections)
    reason: str  # set on the frame that shows the gap; "" on later frames until the new snapshot


class SequenceCheck(Protocol):
    """Follows a venue's book sequence numbers, for venues whose ccxt client does not."""

    def check(self, message: Any, connection: object) -> SequenceBreak | None: ...


@dataclass(frozen=True)
class FundingRateHistory:
    """How a venue's public funding rate history (ccxt fetch_funding_rate_history) is read, to fill
    the rate of funding payments whose own history carries none (trademesh/venues/live/funding_rates.py)."""

    # Most rates one call answers (the venue's page limit).
    page: int
    # The ccxt params that end the read at a time in ms, inclusive (ccxt unifies `since` only).
    until: Callable[[int], Mapping[str, Any]]
    # The member of a rate entry's `info` (the venue's own answer) that holds the rate applied,
    # as the venue's decimal string (ccxt's `fundingRate` is a float).
    rate_field: str


@dataclass(frozen=True)
class TradeHistory:
    """How a venue's public trade history (ccxt fetch_trades with `since`) is read forward from a
    time, for MarketData.GetTrades (trademesh/venues/live/trading.py, LiveTrading.trades). Only a venue
    whose fetch_trades answers the trades from `since` on, oldest first, has one."""

    # Most trades one call answers (the venue's page limit).
    page: int
    # The ccxt params of one call from `since` (ms) that end it at a time in ms, inclusive:
    # (since_ms, until_ms) -> params.
    params: Callable[[int, int], Mapping[str, Any]]
    # A venue that answers one window from `since` at a time (Binance's aggTrades: an hour): its
    # length in ms. A call answering fewer than it asked then holds every trade of its window,
    # and the read goes on after it. None: a short answer holds every trade up to now.
    window_ms: int | None = None
    # True for a venue that answers the newest trades of a window [since, until] (OKX's
    # history-trades by time, Coinbase's market trades), not the oldest: a read asks a window
    # (window_ms first) and, while the answer is a full page (the window holds more), a shorter
    # one, sized from how long the full page's trades spanned; a short answer is the window whole.
    newest_first: bool = False
    # The venue's time unit of a window's bounds, in ms (Coinbase: whole seconds): windows start and
    # end on it.
    unit_ms: int = 1


@dataclass(frozen=True)
class LiveSpec:
    name: str  # trademesh venue name, e.g. "okx-swap"
    ccxt_id: str  # the ccxt.pro class, e.g. "okx"
    kind: InstrumentKind
    default_symbols: tuple[str, ...]  # canonical (ccxt unified) symbols
    # The module of the venue's replay stand-in (e.g. "trademesh.venues.okx.standin", whose
    # create_adapter(capture) makes its ReplayAdapter): a name, not an import, so that only
    # `--replay` loads the fake exchange (trademesh.venues.replay.loader imports it).
    standin: str
    # ccxt options merged over ccxt's defaults (market type, stream names, limits...).
    options: Mapping[str, Any] = field(default_factory=dict)
    # How the venue names a market on its wire (the one place native <-> canonical is decided).
    native_symbol: Callable[[Market], str] = _ccxt_id
    # Which ccxt method feeds our tickers: "watch_ticker" or "watch_bids_asks" (best bid/ask only).
    ticker_method: str = "watch_ticker"
    # True when the ticker_method's stream states no 24h volume and ccxt's watch_ticker streams it
    # beside (Binance USD-M: bookTicker for the best bid and ask, 24hrTicker for the volume): the
    # ticker channel watches both, and each ticker holds the latest of each.
    ticker_stats: bool = False
    # True when ccxt's ticker `open` is the venue's own price 24 hours ago, in the ticker stream's
    # tickers (ticker_open) and in fetch_tickers' (tickers_open, GetTickers): our Ticker's
    # open_24h. Binance's openPrice (its 24hrTicker's o), Bybit's prevPrice24h, OKX's open24h,
    # Kraken's stream (ccxt's open: its last less its 24h change). False where ccxt's `open` is
    # something else (Kraken's REST `o` is today's open, since 00:00 UTC), derived by ccxt from a
    # percentage (Coinbase: a division, not a price the venue states) or absent (Deribit; Binance
    # spot's bookTicker stream): open_24h stays empty there.
    ticker_open: bool = False
    tickers_open: bool = False
    # How the venue's perpetuals' funding rates are streamed (Channel.FUNDING, when `channels`
    # holds it): the ccxt.pro method whose answers land in ccxt's `fundingRates`
    # ("watch_funding_rate"; Binance USD-M's "watch_mark_price", mended in its exchange.py); None:
    # the venue streams none, and they are polled with ccxt's fetch_funding_rate
    # (LiveConfig.funding_poll_s).
    funding_watch: str | None = None
    # How its derivatives' mark prices, open interest and the market's liquidations are read
    # (Channel.MARK, OPEN_INTEREST, LIQUIDATIONS, when `channels` holds them):
    # trademesh/venues/live/derivatives.py.
    derivatives: DerivativeStreams | None = None
    timeframes: tuple[Timeframe, ...] = (Timeframe.M1,)
    # Timeframes ccxt offers whose candles the venue opens off the mesh's grid (days at 00:00 UTC,
    # weeks on Monday 00:00 UTC: Timeframe.open_time_ns): refused as candle streams and in
    # GetCandles rather than published under another open time than the bars'.
    off_grid: tuple[Timeframe, ...] = ()
    channels: tuple[Channel, ...] = (Channel.TRADES, Channel.BOOK, Channel.CANDLES, Channel.TICKERS)
    # Levels asked of watch_order_book (None: the venue's default).
    book_depth: int | None = None
    # ccxt's cancel_all_orders_after arms the venue's own dead-man switch. The runtime arms it
    # only while no reduce-only order rests (it would cancel the protection too), and never one
    # that cannot be switched off (trademesh.venues.runtime.native).
    native_cancel_after: bool = False
    # Shortest timeout the venue's cancel-all-after takes; a shorter ttl arms it with this (the
    # runtime's own timer still trips at the ttl: the native switch is the backstop).
    native_cancel_after_min_ms: int = 0
    # False when the venue's cancel-after cannot be switched off (a ttl of 0 then leaves it be).
    native_cancel_after_disarms: bool = True
    has_sandbox: bool = True
    # False for a venue that accepts a second order with a client id it already holds (Deribit's
    # label): the connector then asks for the client id before placing.
    unique_client_ids: bool = True
    # The venue's own name for the client order id ccxt sends (documentation; ccxt maps "clientOrderId").
    client_order_id_field: str = "clientOrderId"
    # A subclass of the ccxt.pro class that mends a ccxt shortcoming (None: ccxt.pro.<ccxt_id>).
    exchange_class: type[Any] | None = None
    # The account's order updates and fills over the venue's private WebSocket (with credentials).
    private_streams: bool = False
    # For venues whose ccxt client applies book updates without checking their sequence.
    sequence_check: Callable[[], SequenceCheck] | None = None
    # True when the venue's book frames carry a checksum that its client verifies: a ccxt
    # ChecksumError is then a checksum mismatch (counted in Admin as such). ccxt also raises
    # ChecksumError for some sequence breaks (Binance's U/u): those count as resyncs only.
    book_checksum: bool = False
    # Most trades a candle REST page returns (GetCandles paginates).
    candles_page: int = 500
    # The ccxt implicit method that reads the venue's own candle rows, where ccxt's OHLCV drops
    # what they state: Binance's klines ([open ms, open, high, low, close, volume, close ms, quote
    # volume, trades, ...]: "publicGetKlines", USD-M "fapiPublicGetKlines"), so GetCandles holds
    # their quote volume and trade count. None: fetch_ohlcv (no quote volume, no trade count).
    klines_method: str | None = None
    # How its public trade history is read (MarketData.GetTrades; Admin capabilities
    # trade_history); None: the venue's fetch_trades reads no range of the past (Bybit answers its
    # latest trades only), and GetTrades answers UNIMPLEMENTED.
    trade_history: TradeHistory | None = None
    # True when ccxt's fetch_tickers takes the symbols of one base asset at a time (Deribit's
    # get_book_summary_by_currency): GetTickers then asks once per base asset and market type.
    tickers_per_base: bool = False
    # Most funding payments one fetch_funding_history call asks for (the venue's page limit).
    funding_page: int = 100
    # None: the venue's funding history pages oldest first from `since` (Binance's income).
    # Else it answers the newest page (OKX's bills; ccxt filters `since` itself), and this is
    # the fetch_funding_history param that asks for entries older than an entry's id (OKX:
    # "after", a billId): the connector pages back to `since` with it.
    funding_cursor: str | None = None
    # The venue's public funding rate history, read for the rate of payments that come without
    # one (Binance's income, OKX's bills); None: such payments keep no rate.
    funding_rates: FundingRateHistory | None = None
    # Native stop orders: the ccxt createOrder params that make the venue hold a stop with this
    # trigger price (a decimal string), triggering on its last trade price (a sell stop at or
    # below it, a buy stop at or above it); the connector sends the order as "market" or
    # "limit" with them. None when the connector cannot hold stops there (the venue keeps them
    # apart from its other orders, or has no such order): PlaceOrder refuses stop orders and
    # Inspector emulates them.
    stop_params: Callable[[str], Mapping[str, Any]] | None = None
    # For a venue that keeps its stops apart from its other orders (Binance USD-M's algo
    # orders): the ccxt params that address that book in fetch_open_orders, fetch_order,
    # cancel_order and cancel_all_orders (e.g. {"trigger": True}). The connector then lists,
    # looks up and cancels in both books. None: stops are ordinary orders.
    stop_book: Mapping[str, Any] | None = None
    # For a venue whose private stream reports stops on a channel of their own (OKX's
    # `orders-algo`): the ccxt watch_orders params that open it (e.g. {"trigger": True}); the
    # connector then watches it too. None: the stops' changes come with the other orders'.
    stop_stream: Mapping[str, Any] | None = None
    # ccxt's edit_order changes the venue's ordinary limit orders in place (price and total size;
    # the order keeps its id and client id): TradeFlow.AmendOrder uses it (Admin capabilities:
    # AMEND_MODE_NATIVE); an amendment it cannot make so (a stop, a new client order id) is
    # cancelled and replaced by the runtime. False: every amendment is cancel and replace.
    amend_in_place: bool = False
    # ccxt's watch_balance (and watch_positions where its client has it) say when the account
    # changes (trademesh/venues/live/account.py): with credentials the venue is ACCOUNT_FEED_PUSH, read
    # again at each push; False (or no credentials): it is polled (ACCOUNT_FEED_POLL).
    account_stream: bool = False
    # True for a venue whose order sizes of inverse futures and perpetuals are in the quote
    # currency (Deribit: USD, in lots of the contract's face value), not in contracts (OKX).
    inverse_sized_in_quote: bool = False
    # The venue's handler of its public market-data frames before ccxt's (trademesh/venues/live/wire.py), made
    # with (feed, exchange, {native symbol: symbol}, timeframes); None: ccxt's caches and the
    # normalizers, for every stream.
    wire: Callable[..., WireTap] | None = None
    # Which asset the exchange charges a spot fill's fee in (its own rule, stated by each spot
    # venue's spec.py): a paper venue's engine charges it there (docs/ledger.md, "Fees").
    spot_fee_asset: FeeAsset = FeeAsset.QUOTE
    # A derivatives exchange's leverage, margin modes, margin figures and liquidations
    # (trademesh/venues/live/margin.py; docs/derivatives.md, "Margin and liquidation: the live venues"): its
    # modes are Venue.margin_modes (empty: no SetLeverage there), and the venue liquidates.
    # None: a spot venue.
    margin: MarginRules | None = None
