"""Trading domain objects shared by venues and core services.

Decimal everywhere money or size is involved; times are int nanoseconds.
The wire (protobuf) forms are converted to and from these at service edges.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from decimal import Decimal

from trademesh.core.platform.errors import InvalidArgument, shown

__all__ = [
    "TIMEFRAME_LABELS",
    "Amendment",
    "Balance",
    "Candle",
    "Channel",
    "Execution",
    "Fill",
    "FundingPayment",
    "Instrument",
    "InstrumentKind",
    "LeverageSetting",
    "Liquidity",
    "MarginMode",
    "Order",
    "OrderRequest",
    "OrderStatus",
    "OrderType",
    "Position",
    "PositionMargin",
    "Side",
    "StreamKey",
    "TimeInForce",
    "Timeframe",
]


class Side(enum.Enum):
    BUY = "buy"
    SELL = "sell"

    @property
    def opposite(self) -> Side:
        return Side.SELL if self is Side.BUY else Side.BUY

    @property
    def sign(self) -> int:
        return 1 if self is Side.BUY else -1


class InstrumentKind(enum.Enum):
    SPOT = "spot"
    PERPETUAL = "perpetual"
    FUTURE = "future"
    OPTION = "option"


class OrderType(enum.Enum):
    LIMIT = "limit"
    MARKET = "market"
    # Wait, untriggered, until the last trade crosses the trigger price; then a market order
    # (STOP_MARKET) or a limit order at the order's price (STOP_LIMIT).
    STOP_MARKET = "stop_market"
    STOP_LIMIT = "stop_limit"

    @property
    def is_stop(self) -> bool:
        return self in (OrderType.STOP_MARKET, OrderType.STOP_LIMIT)

    @property
    def has_price(self) -> bool:
        """Whether the order carries a limit price (LIMIT, STOP_LIMIT)."""
        return self in (OrderType.LIMIT, OrderType.STOP_LIMIT)

    @property
    def triggered_type(self) -> OrderType:
        """What the order works as once triggered (itself for limit and market orders)."""
        if self is OrderType.STOP_MARKET:
            return OrderType.MARKET
        if self is OrderType.STOP_LIMIT:
            return OrderType.LIMIT
        return self


class TimeInForce(enum.Enum):
    GTC = "gtc"
    IOC = "ioc"
    FOK = "fok"


class OrderStatus(enum.Enum):
    OPEN = "open"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELED = "canceled"
    REJECTED = "rejected"
    EXPIRED = "expired"

    @property
    def is_open(self) -> bool:
        return self in (OrderStatus.OPEN, OrderStatus.PARTIALLY_FILLED)


class Liquidity(enum.Enum):
    MAKER = "maker"
    TAKER = "taker"


class Channel(enum.Enum):
    TRADES = "trades"
    BOOK = "book"
    CANDLES = "candles"
    TICKERS = "tickers"
    # A perpetual's funding rate as the venue states it (perpetuals only).
    FUNDING = "funding"
    # Derivatives only: mark and index prices, open interest, the venue's public liquidations.
    MARK = "mark"
    OPEN_INTEREST = "open_interest"
    LIQUIDATIONS = "liquidations"


class MarginMode(enum.Enum):
    """How a derivatives position's margin is held (proto: tradeflow.v1.MarginMode)."""

    CROSS = "cross"
    ISOLATED = "isolated"


class Timeframe(enum.Enum):
    """Candle and bar intervals; the value is the length in seconds.

    This enum is the one table of timeframes: their labels ("1s" ... "1w", as on the bus, in
    the database, in configs and tools), their alignment and their wire values
    (trademesh.core.domain.convert) derive from it. Every interval that aligns a time to a timeframe
    goes through `open_time_ns` (or `offset_ns` where a hot path precomputes it).
    """

    S1 = 1
    M1 = 60
    M5 = 300
    M15 = 900
    H1 = 3600
    H4 = 14400
    D1 = 86400
    W1 = 604800

    def __init__(self, seconds: int) -> None:
        # Once per member: open_time_ns is on hot paths (the detector's bars), Enum.value is slow.
        self._length_ns = seconds * 1_000_000_000
        # 1970-01-01 was a Thursday: weeks open 4 days past a multiple of a week, on Mondays.
        self._offset_ns = 4 * 86_400 * 1_000_000_000 if seconds == 604_800 else 0

    @property
    def ns(self) -> int:
        return self._length_ns

    @property
    def offset_ns(self) -> int:
        """Where intervals start past a multiple of the length since the epoch.

        0 but for weeks: they open Monday 00:00 UTC, as the exchanges' 1w candles do.
        """
        return self._offset_ns

    def open_time_ns(self, ts_ns: int) -> int:
        """Start of the interval that contains ts_ns."""
        return ts_ns - (ts_ns - self._offset_ns) % self._length_ns

    @property
    def label(self) -> str:
        """ "1s", "15m", "4h", "1d", "1w": the length in its largest whole unit."""
        for unit, seconds in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
            if self.value % seconds == 0:
                return f"{self.value // seconds}{unit}"
        return f"{self.value}s"

    @classmethod
    def from_label(cls, label: str) -> Timeframe:
        """The timeframe of a label; InvalidArgument (field "timeframe") naming the known ones."""
        found = _BY_LABEL.get(label)
        if found is None:
            raise InvalidArgument.field(
                "timeframe", f"{shown(label, 16)} is not a timeframe; known: {', '.join(TIMEFRAME_LABELS)}"
            )
        return found


# Every timeframe's label, finest first.
TIMEFRAME_LABELS: tuple[str, ...] = tuple(tf.label for tf in Timeframe)
_BY_LABEL = {tf.label: tf for tf in Timeframe}


@dataclass(frozen=True)
class Instrument:
    venue: str
    symbol: str
    native_symbol: str
    kind: InstrumentKind
    base_asset: str
    quote_asset: str
    settle_asset: str
    tick_size: Decimal
    lot_size: Decimal
    min_size: Decimal = Decimal(0)
    min_notional: Decimal = Decimal(0)
    # Base units per unit of size; 0 for an inverse contract (its base amount moves with the price).
    contract_size: Decimal = Decimal(1)
    active: bool = True
    # What one unit of size is worth, in contract_value_asset ("": the base asset). Inverse
    # contracts count it in the quote asset (proto/trademesh/common/v1/common.proto).
    contract_value: Decimal = Decimal(1)
    contract_value_asset: str = ""
    # The venue's stated fee rates (fractions of the notional; a negative maker rate is a
    # rebate); None when the venue does not say.
    maker_fee_rate: Decimal | None = None
    taker_fee_rate: Decimal | None = None

    @property
    def value_asset(self) -> str:
        return self.contract_value_asset or self.base_asset

    @property
    def inverse(self) -> bool:
        """Sized in a fixed value of the quote asset (a USD face value), not in the base asset."""
        return self.value_asset == self.quote_asset and self.quote_asset != self.base_asset

    def notional(self, size: Decimal, price: Decimal) -> Decimal:
        """What `size` at `price` is worth, in the quote asset."""
        if self.inverse:
            return size * self.contract_value
        return size * self.contract_value * price


@dataclass(frozen=True)
class OrderRequest:
    """A validated order to place: sizes and prices already checked against the instrument."""

    symbol: str
    side: Side
    type: OrderType
    size: Decimal
    price: Decimal | None
    time_in_force: TimeInForce
    post_only: bool = False
    reduce_only: bool = False
    client_order_id: str = ""
    # Stop orders only: the last trade price that triggers them.
    trigger_price: Decimal | None = None


@dataclass(frozen=True)
class Amendment:
    """A validated change of a working order (TradeFlow.AmendOrder): None keeps a value."""

    price: Decimal | None = None
    # The new total size, what has filled included.
    size: Decimal | None = None
    trigger_price: Decimal | None = None
    # The client order id the order goes by from now on ("" keeps its own).
    client_order_id: str = ""
    # The replaced order's status_reason (cancel and replace), or the amended one's.
    reason: str = "amended"
    # Refuse (FailedPrecondition) an order that has filled anything, leaving it as it is.
    unfilled_only: bool = False


@dataclass
class Order:
    """An order's current state. Venues keep their own copy; callers get snapshots."""

    venue: str
    order_id: str
    client_order_id: str
    symbol: str
    side: Side
    type: OrderType
    time_in_force: TimeInForce
    price: Decimal | None
    size: Decimal
    post_only: bool = False
    reduce_only: bool = False
    filled_size: Decimal = Decimal(0)
    average_fill_price: Decimal | None = None
    status: OrderStatus = OrderStatus.OPEN
    status_reason: str = ""
    created_ns: int = 0
    updated_ns: int = 0
    # Stop orders only: the trigger price, and whether the last trade has crossed it yet.
    trigger_price: Decimal | None = None
    triggered: bool = False
    # The venue's own order closing a position by liquidation.
    liquidation: bool = False

    @property
    def remaining(self) -> Decimal:
        return self.size - self.filled_size


@dataclass(frozen=True)
class Fill:
    fill_id: str
    order_id: str
    client_order_id: str
    symbol: str
    side: Side
    price: Decimal
    size: Decimal
    fee: Decimal
    fee_asset: str
    liquidity: Liquidity
    trade_id: str
    ts_event_ns: int
    # A liquidation fill: at the bankruptcy price, `fee` the liquidation fee.
    liquidation: bool = False


@dataclass(frozen=True)
class Execution:
    """One order state change; `order` is a snapshot taken after the change."""

    ts_event_ns: int
    order: Order
    fill: Fill | None = None


@dataclass(frozen=True)
class Balance:
    asset: str
    free: Decimal
    locked: Decimal = Decimal(0)
    # Of locked: the initial margin open derivatives positions hold; None: not said.
    position_margin: Decimal | None = None

    @property
    def total(self) -> Decimal:
        return self.free + self.locked


@dataclass(frozen=True)
class Position:
    symbol: str
    size: Decimal
    entry_price: Decimal | None
    realized_pnl: Decimal = field(default=Decimal(0))
    # Derivatives (None for spot, or where the venue does not say): proto tradeflow.v1.Position.
    margin: PositionMargin | None = None


@dataclass(frozen=True)
class PositionMargin:
    """A derivatives position's margin as the venue reckons it, amounts in `settle_asset`."""

    settle_asset: str
    leverage: Decimal | None = None
    mode: MarginMode | None = None
    mark_price: Decimal | None = None
    initial_margin: Decimal | None = None
    maintenance_margin: Decimal | None = None
    # maintenance margin / margin balance: 1 is liquidation.
    margin_ratio: Decimal | None = None
    unrealized_pnl: Decimal | None = None
    # None: the position cannot be liquidated by a price move, or the venue does not say.
    liquidation_price: Decimal | None = None

    def liquidation_distance(self) -> Decimal | None:
        """|mark - liquidation price| / mark, or None without both."""
        if not self.mark_price or self.liquidation_price is None:
            return None
        return abs(self.mark_price - self.liquidation_price) / self.mark_price


@dataclass(frozen=True)
class LeverageSetting:
    """A derivatives symbol's leverage and margin mode in force (proto: tradeflow.v1.LeverageSetting)."""

    symbol: str
    leverage: Decimal
    mode: MarginMode
    max_leverage: Decimal | None = None


@dataclass(frozen=True)
class FundingPayment:
    """A perpetual position's funding at one funding time: + received, - paid, in `asset`."""

    funding_id: str  # the venue's id: stable and unique on the venue
    symbol: str
    asset: str
    amount: Decimal
    rate: Decimal | None  # None when the venue does not say
    position_size: Decimal | None  # signed; None when the venue does not say
    ts_ns: int


@dataclass(frozen=True)
class StreamKey:
    """One upstream market-data stream of a venue: a channel of a symbol."""

    symbol: str
    channel: Channel


@dataclass(frozen=True)
class Candle:
    timeframe: Timeframe
    open_time_ns: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal
    quote_volume: Decimal | None  # None: not known (a venue's candles that do not state it)
    trade_count: int
    closed: bool
