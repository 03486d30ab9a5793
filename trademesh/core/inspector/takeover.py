"""What a new leader does the moment it takes the lease, before its journal's replay (issue 56):
the replay and the recovery that follows take seconds, and a position the dead leader left without
its whole protective pair, or an entry the venue's dead-man switch would cancel, cannot wait
for them (a failover left a fill of 0.001 BTC unprotected for 6.3 s; a 9.5 s one let the dead-man
trip and cancel a resting entry).

So, on taking the lease, before the replay:
- the dead-man heartbeats start (trademesh.core.inspector.followers: `beat`);
- each venue's positions are protected as the venue shows them: what of a position its
  reduce-only orders at the venue do not cover (the dead leader's pairs stay there: the dead-man
  cancels entries only) gets an interim stop-loss and take-profit, reduce-only, at the policies'
  distances (`protect.stop_loss`, `protect.take_profit` of the `--policies` file) from the
  venue's entry price. The legacy positions (found at a fresh start, never touched) are left out
  by their sizes as found (`legacy_key`, written when they were found); with no journal yet
  everything at the venues is legacy, and nothing is placed.

The interim orders are no orders of the core's: nothing is journaled, their client order ids
say what they are (`INTERIM_PREFIX`), and their fills, should a stop trigger meanwhile, reach the
core as any foreign fill does (they moved the position). Once the replay has rebuilt the core,
and before it recovers its working orders and places its own protection, every interim order
open at the venues is cancelled (`withdraw`): the venue refuses reduce-only orders that together
exceed the position, so they would stand in the way of the core's own. One left open (a leader
that died meanwhile) is cancelled by the next one's `withdraw`, or by the reconciliation.

Each placement and cancel is fenced (trademesh.core.inspector.lease_guard), as any of the leader's.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal

import grpc

from trademesh.common.v1 import common_pb2 as common
from trademesh.core.domain.decimals import format_decimal
from trademesh.core.domain.model import OrderType, Side, TimeInForce
from trademesh.core.inspector.engine.actions import OrderRole, PlaceOrder
from trademesh.core.inspector.engine.policies import ProtectPolicy
from trademesh.core.inspector.engine.positions import Key
from trademesh.core.inspector.executor import Executor
from trademesh.core.inspector.venues import VenueLinks
from trademesh.core.platform.bus.group import GroupOutcome, GroupWrite, SetFields, write_group
from trademesh.core.platform.bus.redis import BusRedis
from trademesh.core.platform.replicas.leader import Leadership, LeadershipLost
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf

__all__ = ["INTERIM_PREFIX", "Takeover", "interim", "legacy_key"]

log = logging.getLogger(__name__)

# 32 letters and digits in all, as the core's ids (OKX takes no other characters).
INTERIM_PREFIX = "tko"
_NAMESPACE = uuid.UUID("1c0b8a52-7d3e-4f21-b6a9-74616b656f76")
_CLOSES = {tf.ORDER_TYPE_STOP_MARKET, tf.ORDER_TYPE_STOP_LIMIT}
ZERO = Decimal(0)
_WITHDRAWN = "takeover's interim protection: the core protects now"


def legacy_key(instance: str) -> str:
    """The legacy positions' sizes as found, `<venue>/<symbol>` -> size (the journal's slot)."""
    return f"inspector.legacy.{{{instance}}}"


def interim(client_order_id: str) -> bool:
    """Whether an order is a takeover's interim protection."""
    return client_order_id.startswith(INTERIM_PREFIX) and len(client_order_id) == 32


@dataclass(frozen=True)
class UncoveredPosition:
    """What of a position no reduce-only order at the venue covers, per role."""

    venue: str
    symbol: str
    side: Side  # the closing side
    entry: Decimal
    sign: int  # the position's
    stop: Decimal
    target: Decimal


@dataclass(eq=False)
class Takeover:
    """A new leader's interim protection (module docstring), with the orders it placed."""

    redis: BusRedis
    leadership: Leadership
    links: VenueLinks
    executor: Executor
    instance: str
    placed: list[PlaceOrder] = field(default_factory=list, init=False)
    # From the call to the last interim answer.
    protected_after_s: float | None = field(default=None, init=False)

    async def protect(self, policy: ProtectPolicy) -> None:
        """Interim protection of every venue's positions where it is missing (module docstring)."""
        started = time.monotonic()
        legacy = await self._legacy()
        for venue in self.links.names():
            try:
                await self._protect_venue(venue, policy, legacy)
            except LeadershipLost:
                raise
            except Exception as exc:  # a venue away: the core protects it after the replay
                log.warning("inspector: takeover: the positions of %s: %s", venue, exc)
        self.protected_after_s = time.monotonic() - started
        if self.placed:
            log.info(
                "inspector: takeover: %d interim protective orders placed in %.3f s, before the replay",
                len(self.placed), self.protected_after_s,
            )  # fmt: skip

    async def _legacy(self) -> dict[str, Decimal]:
        found = await self.redis.hgetall(legacy_key(self.instance))
        return {_text(k): Decimal(_text(v)) for k, v in found.items()}

    async def _protect_venue(self, venue: str, policy: ProtectPolicy, legacy: dict[str, Decimal]) -> None:
        desk = self.links.desk(venue)
        wait, meta = self.executor.timeout_s, desk.metadata
        positions = await desk.tradeflow.GetPositions(tf.GetPositionsRequest(), timeout=wait, metadata=meta)
        opened = await desk.tradeflow.ListOpenOrders(tf.ListOpenOrdersRequest(), timeout=wait, metadata=meta)
        await self.executor.learn(venue)
        for position in positions.positions:
            size = Decimal(position.size or "0")
            ours = abs(size) - abs(legacy.get(f"{venue}/{position.symbol}", ZERO))
            if size == 0 or ours <= 0 or not position.entry_price:
                continue
            gap = _gap(venue, position, ours, opened.orders)
            for order in await self._orders(gap, policy):
                answer = await self.executor.place_outside_core(order)
                self.placed.append(order)
                log.info(
                    "inspector: takeover: %s %s %s %s of %s at %s: %s", venue, position.symbol,
                    order.role.value, order.size, size, order.trigger_price or order.price,
                    tf.OrderStatus.Name(answer.status),
                )  # fmt: skip

    async def _orders(self, gap: UncoveredPosition, policy: ProtectPolicy) -> list[PlaceOrder]:
        listed = await self.executor.ticks.instruments(gap.venue)
        item = None if listed is None else listed.get(gap.symbol)
        lot = Decimal(item.lot_size) if item is not None and item.lot_size else None
        least = Decimal(item.min_size) if item is not None and item.min_size else ZERO
        orders = []
        native = self.executor.native_stops(gap.venue)
        for role, uncovered in ((OrderRole.STOP_LOSS, gap.stop), (OrderRole.TAKE_PROFIT, gap.target)):
            size = uncovered if lot is None else (uncovered / lot).to_integral_value(ROUND_DOWN) * lot
            if size <= 0 or size < least:
                continue
            if role is OrderRole.STOP_LOSS and not native:
                continue  # an emulated stop is the core's to hold: after the replay
            orders.append(self._order(gap, role, size, policy))
        return orders

    def _order(
        self, gap: UncoveredPosition, role: OrderRole, size: Decimal, policy: ProtectPolicy
    ) -> PlaceOrder:
        token = self.leadership.lease.token or ""
        name = f"takeover/{token}/{gap.venue}/{gap.symbol}/{role.value}"
        client_order_id = INTERIM_PREFIX + uuid.uuid5(_NAMESPACE, name).hex[len(INTERIM_PREFIX) :]
        if role is OrderRole.STOP_LOSS:
            trigger = gap.entry * (1 - gap.sign * policy.stop_loss)
            return PlaceOrder(
                client_order_id, gap.venue, gap.symbol, gap.side, OrderType.MARKET, size, None,
                TimeInForce.GTC, True, role, trigger_price=trigger,
            )  # fmt: skip
        price = gap.entry * (1 + gap.sign * policy.take_profit)
        return PlaceOrder(
            client_order_id, gap.venue, gap.symbol, gap.side, OrderType.LIMIT, size, price,
            TimeInForce.GTC, True, role,
        )  # fmt: skip

    async def remember_legacy(self, legacy: dict[Key, tuple[Decimal, Decimal | None]]) -> None:
        """The legacy positions found at a fresh start, by size, for a later leader's takeover
        (fenced: a deposed leader writes nothing)."""
        sizes = {f"{venue}/{symbol}": format_decimal(size) for (venue, symbol), (size, _) in legacy.items()}
        if not sizes:
            return
        group = GroupWrite(
            state=(SetFields(legacy_key(self.instance), sizes),), fence=self.leadership.fence()
        )
        if (await write_group(self.redis, group)).outcome is GroupOutcome.FENCED:
            self.leadership.deposed("its write of the legacy positions was refused (FENCED)")
            raise LeadershipLost(f"{self.leadership.name}: the legacy positions' write was refused (FENCED)")

    async def withdraw(self) -> int:
        """Every interim order open at the venues cancelled (the core protects from now)."""
        cancelled = 0
        for venue in self.links.names():
            try:
                desk = self.links.desk(venue)
                opened = await desk.tradeflow.ListOpenOrders(
                    tf.ListOpenOrdersRequest(), timeout=self.executor.timeout_s, metadata=desk.metadata
                )
                for order in opened.orders:
                    if interim(order.client_order_id):
                        await self.executor.cancel_outside_core(venue, order.client_order_id, _WITHDRAWN)
                        cancelled += 1
            except grpc.aio.AioRpcError as exc:  # left to the reconciliation
                log.warning("inspector: takeover: the interim orders of %s: %s", venue, exc.code().name)
        return cancelled


def _gap(venue: str, position: tf.Position, ours: Decimal, orders: Sequence[tf.Order]) -> UncoveredPosition:
    size = Decimal(position.size)
    sign = 1 if size > 0 else -1
    closing = _closing(sign)
    stops = targets = ZERO
    for order in orders:
        if order.symbol != position.symbol or not order.reduce_only or order.side != closing[1]:
            continue
        left = Decimal(order.size or "0") - Decimal(order.filled_size or "0")
        if order.type in _CLOSES:
            stops += left
        else:
            targets += left
    return UncoveredPosition(
        venue, position.symbol, closing[0], Decimal(position.entry_price), sign,
        max(ours - stops, ZERO), max(ours - targets, ZERO),
    )  # fmt: skip


def _closing(sign: int) -> tuple[Side, int]:
    """The side that closes a position of `sign`: the core's, and the wire's."""
    return (Side.SELL, common.SIDE_SELL) if sign > 0 else (Side.BUY, common.SIDE_BUY)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
