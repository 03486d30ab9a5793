"""What a venue connector implements; the runtime does everything else.

The runtime (trademesh.venues.runtime.app) serves MarketData, TradeFlow and Admin for any
Venue: it validates requests, fans market data out to subscribers, streams
executions, keeps stream statistics and runs the dead-man switch. A connector
only speaks to its exchange (or, for sim, simulates one) and reports what
happens through the VenueContext it is started with.
"""

from __future__ import annotations

import abc
import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

from trademesh.core.domain.matching.fees import FeeAsset
from trademesh.core.domain.model import (
    Amendment,
    Balance,
    Candle,
    Channel,
    Execution,
    FundingPayment,
    Instrument,
    LeverageSetting,
    MarginMode,
    Order,
    OrderRequest,
    Position,
    StreamKey,
    Timeframe,
)
from trademesh.marketdata.v1 import marketdata_pb2 as md
from trademesh.venues.runtime.stats import Staleness
from trademesh.venues.runtime.trades import TradesRead

if TYPE_CHECKING:
    from trademesh.venues.runtime.feed import MarketFeed

__all__ = ["AccountFeed", "NativeSwitch", "NotInPlace", "OrderRef", "Venue", "VenueContext"]


class NotInPlace(Exception):
    """Raised by Venue.amend_order for an amendment the exchange cannot make in place (a new
    client order id, a stop): the runtime cancels the order and places its replacement."""


class AccountFeed(enum.Enum):
    """How the venue learns that its account changed (trademesh.venues.runtime.account)."""

    PUSH = "push"  # the exchange says so: its executions, or a private account stream
    POLL = "poll"  # read every account_poll_interval_s, and after each fill


@dataclass(frozen=True)
class OrderRef:
    """An order named by the venue's id or by the caller's client id (exactly one is set)."""

    order_id: str = ""
    client_order_id: str = ""


@dataclass(frozen=True)
class NativeSwitch:
    """An exchange's own dead-man switch (cancel-all-after): every one known cancels every
    order when it trips, reduce-only ones too."""

    # A ttl of 0 switches it off (False: once set, it stays: Bybit's).
    disarms: bool


@dataclass(frozen=True)
class VenueContext:
    """Given to Venue.start: where the venue reports market data and executions."""

    feed: MarketFeed
    on_execution: Callable[[Execution], None]
    # The exchange pushed an account update (balances or positions may have changed).
    on_account: Callable[[], None] = lambda: None


class Venue(abc.ABC):
    """One exchange connector. Errors raised are trademesh.core.platform.errors types."""

    name: str
    # Takes STOP_MARKET and STOP_LIMIT orders natively (Admin GetStatus capabilities.stop_orders);
    # False: the runtime refuses them with FailedPrecondition before the venue sees one.
    supports_stop_orders: bool = False
    # Changes an order in place (amend_order); False: the runtime amends by cancel and replace
    # (Admin GetStatus capabilities.amend; trademesh.venues.runtime.amend).
    amends_orders: bool = False
    account_feed: AccountFeed = AccountFeed.POLL
    account_poll_interval_s: float = 5.0
    # Its positions' margin figures (mark, unrealised PnL, margin ratio) move with the market, not
    # only with executions (an engine reckoning them at its own mark: sim, paper). While someone
    # streams the account and it holds an open margined position, the runtime reads it again
    # account_mark_interval_s after the last read and sends the positions that moved
    # (trademesh.venues.runtime.account). A POLL venue's polls already re-read them.
    margin_moves_with_market: bool = False
    account_mark_interval_s: float = 1.0
    # A paper venue (trademesh/venues/paper): orders matched by the sim's engine, never sent to the
    # exchange; Admin GetStatus and the gateway's registry say so.
    paper: bool = False
    # The asset its exchange charges a spot fill's fee in: what a paper venue wrapping it charges.
    spot_fee_asset: FeeAsset = FeeAsset.QUOTE
    # Reads its exchange's public trade history (trades()): MarketData.GetTrades, Admin
    # GetStatus capabilities.trade_history; False: GetTrades answers UNIMPLEMENTED.
    trade_history: bool = False
    # Reads every instrument's latest ticker at once (tickers()): MarketData.GetTickers, Admin
    # GetStatus capabilities.all_tickers; False: GetTickers answers UNIMPLEMENTED.
    all_tickers: bool = False
    # The margin modes set_leverage takes for its derivatives symbols (TradeFlow SetLeverage and
    # GetLeverage, Admin GetStatus capabilities.leverage and margin_modes); empty: no leverage
    # (a spot venue), and they answer UNIMPLEMENTED.
    margin_modes: tuple[MarginMode, ...] = ()
    # Liquidates positions whose margin ratio reaches 1, reporting Fill.liquidation (capabilities.liquidates).
    liquidates: bool = False
    # The MarketData channels it can stream: Admin AddSubscriptions refuses the others, and a
    # subscription to one is told the venue has no such channel. The derivatives channels (mark,
    # open interest, liquidations) only where the venue says it streams them.
    channels: frozenset[Channel] = frozenset(Channel) - {
        Channel.MARK,
        Channel.OPEN_INTEREST,
        Channel.LIQUIDATIONS,
    }

    async def prepare(self) -> None:  # noqa: B027 (optional hook)
        """Connect to the venue and load its instruments; runs before instruments() is asked."""

    @abc.abstractmethod
    async def start(self, context: VenueContext, streams: set[StreamKey]) -> None:
        """Connect and open the given upstream streams."""

    @abc.abstractmethod
    async def stop(self) -> None: ...

    @abc.abstractmethod
    def instruments(self) -> Sequence[Instrument]: ...

    def not_trading(self, symbol: str) -> str | None:
        """Why the venue takes no order on `symbol` now though it may list it or have listed it
        (its exchange delisted it, or lists it inactive): the runtime refuses such an order, or
        amendment, with FAILED_PRECONDITION and this reason. None (this default): it takes them."""
        return None

    @abc.abstractmethod
    def default_streams(self) -> set[StreamKey]:
        """The upstream streams to open at start (from the venue's config)."""

    @abc.abstractmethod
    async def set_streams(self, streams: set[StreamKey]) -> None:
        """Open and close upstream streams so exactly these are open."""

    @abc.abstractmethod
    async def reconnect(self) -> int:
        """Drop and re-open upstream connections; returns the number of streams re-opened."""

    @abc.abstractmethod
    async def candles(
        self, symbol: str, timeframe: Timeframe, start_ns: int, end_ns: int, limit: int
    ) -> list[Candle]: ...

    async def trades(self, symbol: str, since_ns: int, end_ns: int, limit: int) -> TradesRead:
        """Public trades of `symbol` from since_ns (inclusive) to end_ns (exclusive), oldest first:
        at least the first `limit` of them where one read of the exchange holds that many (only
        asked when trade_history; the runtime pages: trademesh.venues.runtime.trades)."""
        raise NotImplementedError(f"{self.name} does not read trade history")

    async def tickers(self, symbols: Sequence[str]) -> list[md.SymbolTicker]:
        """The latest ticker of each of `symbols` (listed ones, in that order), leaving out those
        it holds none of (only asked when all_tickers)."""
        raise NotImplementedError(f"{self.name} does not read all tickers")

    @abc.abstractmethod
    async def place_order(self, request: OrderRequest) -> tuple[Order, bool]:
        """Place an order; True with the first order when client_order_id was seen before."""

    @abc.abstractmethod
    async def cancel_order(self, ref: OrderRef, reason: str) -> Order:
        """Cancel one order; `reason` is its status_reason once cancelled
        (trademesh.venues.runtime.cancels)."""

    @abc.abstractmethod
    async def cancel_all_orders(self, symbol: str | None, reason: str) -> list[Order]:
        """Cancel every open order (of `symbol`), reduce-only ones too, each with `reason`."""

    async def amend_order(self, ref: OrderRef, change: Amendment) -> tuple[Order, bool]:
        """Change an open order in place (only asked when amends_orders); True with the order
        when change.client_order_id already names it (a repeated amendment). NotInPlace when the
        exchange cannot make this amendment in place (the runtime then cancels and replaces)."""
        raise NotImplementedError(f"{self.name} does not amend orders in place")

    @abc.abstractmethod
    async def get_order(self, ref: OrderRef) -> Order: ...

    @abc.abstractmethod
    async def open_orders(self, symbol: str | None) -> list[Order]: ...

    @abc.abstractmethod
    async def balances(self) -> list[Balance]: ...

    @abc.abstractmethod
    async def positions(self, symbol: str | None) -> list[Position]: ...

    async def set_leverage(self, symbol: str, leverage: Decimal, mode: MarginMode | None) -> LeverageSetting:
        """Set a derivatives symbol's leverage and (None: keep it) margin mode; the setting now in
        force (only asked when margin_modes; the runtime has checked the symbol is a derivative
        and the mode one of margin_modes). InvalidArgument naming `leverage` above the symbol's
        maximum."""
        raise NotImplementedError(f"{self.name} does not set leverage")

    async def leverage(self, symbol: str) -> LeverageSetting:
        """A derivatives symbol's leverage and margin mode in force (only asked when margin_modes)."""
        raise NotImplementedError(f"{self.name} does not read leverage")

    def account_as_of_ns(self) -> int:
        """The venue's time (ns) the account answer just given (balances, positions) is as of,
        read right after it with no await between: the answer holds every fill of the venue's
        executions stamped up to this time and none after. 0 (this default) when the venue cannot
        tell: an exchange's REST answer is as of some moment before it came."""
        return 0

    async def funding_payments(self, symbol: str | None, since_ns: int, limit: int) -> list[FundingPayment]:
        """The account's funding payments at or after since_ns, oldest first, at most `limit`
        (the runtime has checked the arguments). This default is a spot venue's answer: spot
        has no funding, so there is none; a venue with perpetuals overrides it."""
        return []

    def staleness(self) -> Staleness:
        """When a connected stream's silence is abnormal (Admin shows it STALE, subscribers get a GAP)."""
        return Staleness()

    def silence_expected(self) -> bool:
        """True while silence is normal for every stream (e.g. a replay that has played out)."""
        return False

    def native_switch(self) -> NativeSwitch | None:
        """The exchange's own dead-man switch as this venue can arm it; None when it has none
        (or cannot arm it: no credentials). The runtime decides when to arm it
        (trademesh.venues.runtime.native)."""
        return None

    async def cancel_all_after(self, ttl_ms: int) -> bool:
        """Arm (ttl 0: disarm) the exchange's own dead-man switch; False when that failed or
        there is none."""
        return False
