"""What the core knows of the venues' derivatives accounts (a journaled input, `MarginReport`:
the shell reads each venue's positions, balances and leverage settings; the core never asks),
and the arithmetic of liquidation the leverage policies are checked with (docs/inspector-orders.md,
"Leverage, margin and liquidation"). Pure."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from trademesh.core.domain.model import PositionMargin, Side
from trademesh.core.inspector.engine.instruments import InstrumentFacts
from trademesh.core.inspector.engine.positions import Key

__all__ = [
    "MarginBook",
    "MarginReport",
    "SettleBalance",
    "derivative",
    "distance",
    "estimate_liquidation",
    "settle_asset",
]

ZERO = Decimal(0)
ONE = Decimal(1)


@dataclass(frozen=True)
class SettleBalance:
    """A settle asset's balance at a venue: its total, and the initial margin its open
    positions hold of it (None: the venue does not say; the positions' margins are summed)."""

    total: Decimal
    position_margin: Decimal | None = None


@dataclass(frozen=True)
class MarginReport:
    """A venue's derivatives account as it reports it. `positions` None: not said (those known
    stand); given, every position it holds. Balances and settings given replace those known."""

    venue: str
    leverage: bool
    positions: Mapping[str, PositionMargin] | None = None
    balances: Mapping[str, SettleBalance] = field(default_factory=dict)
    settings: Mapping[str, Decimal] = field(default_factory=dict)


class MarginBook:
    def __init__(self) -> None:
        self.capable: dict[str, bool] = {}  # venue -> it trades leveraged derivatives
        self.settings: dict[Key, Decimal] = {}  # the leverage in force (the venue's, or ours set)
        self.positions: dict[Key, PositionMargin] = {}  # as the venue reports them
        self.balances: dict[Key, SettleBalance] = {}  # (venue, asset)
        # Positions reduced by liquidation.min_distance_open and not back beyond it since: the
        # reducing order's client order id (one reduction per approach to the liquidation price).
        self.reduced: dict[Key, str] = {}

    def apply(self, report: MarginReport) -> None:
        venue = report.venue
        self.capable[venue] = report.leverage
        if report.positions is not None:
            for key in [k for k in self.positions if k[0] == venue]:
                del self.positions[key]
            for symbol, margin in report.positions.items():
                self.positions[(venue, symbol)] = margin
                if margin.leverage is not None:
                    self.settings[(venue, symbol)] = margin.leverage
        for asset, balance in report.balances.items():
            self.balances[(venue, asset)] = balance
        for symbol, leverage in report.settings.items():
            self.settings[(venue, symbol)] = leverage

    def leveraged(self, key: Key, facts: InstrumentFacts | None) -> bool:
        """Whether the market's positions are leveraged: a derivative at a venue that says it
        trades leverage (a spot market, or a venue without leverage: never)."""
        return self.capable.get(key[0], False) and derivative(key[1], facts)

    def maintenance_rate(self, key: Key) -> Decimal | None:
        """The maintenance margin rate the venue applies to the market's position: its
        maintenance margin over its initial margin times its leverage (both are of the same
        notional); None when it holds no such position."""
        m = self.positions.get(key)
        if m is None or not m.initial_margin or not m.leverage or m.maintenance_margin is None:
            return None
        return m.maintenance_margin / (m.initial_margin * m.leverage)

    def held_margin(self, venue: str, asset: str) -> Decimal:
        """The initial margin the venue's positions settling in `asset` hold."""
        balance = self.balances.get((venue, asset))
        if balance is not None and balance.position_margin is not None:
            return balance.position_margin
        return sum(
            (
                m.initial_margin or ZERO
                for k, m in self.positions.items()
                if k[0] == venue and m.settle_asset == asset
            ),
            ZERO,
        )

    def _settling(self, venue: str, asset: str) -> list[PositionMargin]:
        return [m for k, m in self.positions.items() if k[0] == venue and m.settle_asset == asset]

    def equity(self, venue: str, asset: str) -> Decimal | None:
        """The account's equity in `asset` at the venue: its balance and its positions'
        unrealised PnL; None when the venue has not reported the balance."""
        balance = self.balances.get((venue, asset))
        if balance is None:
            return None
        unrealized = sum(
            (
                m.unrealized_pnl or ZERO
                for k, m in self.positions.items()
                if k[0] == venue and m.settle_asset == asset
            ),
            ZERO,
        )
        return balance.total + unrealized


def derivative(symbol: str, facts: InstrumentFacts | None) -> bool:
    """Whether a market is a derivative: by the venue's facts, else by its unified name (a
    settle asset after ":", "BTC/USDT:USDT")."""
    return not facts.spot if facts is not None and facts.kind is not None else ":" in symbol


def settle_asset(symbol: str) -> str:
    """The asset a derivatives market settles in, by its unified name ("BTC/USDT:USDT" ->
    USDT, "BTC/USD:BTC" -> BTC); its quote asset when the name does not say."""
    pair, _, settle = symbol.partition(":")
    return settle or pair.partition("/")[2]


def estimate_liquidation(
    price: Decimal, leverage: Decimal, rate: Decimal, side: Side, inverse: bool
) -> Decimal | None:
    """The liquidation price of a position opened at `price` with `leverage` (its initial
    margin 1/leverage of its notional, isolated) where the venue liquidates at the maintenance
    margin `rate` of the notional (fees aside): where margin + PnL = maintenance. Linear: a long
    P(1 - 1/L)/(1 - m), a short P(1 + 1/L)/(1 + m); inverse (the PnL in the coin): a long
    P(1 + m)/(1 + 1/L), a short P(1 - m)/(1 - 1/L). None: no price liquidates it (an inverse
    short at 1x or less)."""
    inv = ONE / leverage
    if not inverse:
        if side is Side.BUY:
            return max(price * (ONE - inv) / (ONE - rate), ZERO)
        return price * (ONE + inv) / (ONE + rate)
    if side is Side.BUY:
        return price * (ONE + rate) / (ONE + inv)
    if inv >= ONE:
        return None
    return price * (ONE - rate) / (ONE - inv)


def distance(mark: Decimal, liquidation: Decimal | None) -> Decimal:
    """|mark - liquidation| / mark: how far the price may move before liquidation (1 when no
    price liquidates)."""
    if liquidation is None or mark <= 0:
        return ONE
    return abs(mark - liquidation) / mark
