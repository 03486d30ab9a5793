"""Order manager of the simulated exchange: the state, locks and executions of user orders.

The exchange validates and accepts an order (locking funds), then reports each fill the engine
makes and how the order ended; every change is an Execution with a snapshot of the order. What
callers rely on (ids, the executions' order, locks, reduce-only, stops, memory): docs/sim.md,
"The simulated exchange's orders". All Decimal arithmetic runs inside ``localcontext(EXACT)``.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

from trademesh.core.domain.decimals import format_decimal, is_multiple
from trademesh.core.domain.matching.accounts import Accounts, exact_quotient
from trademesh.core.domain.matching.fees import FeeAsset
from trademesh.core.domain.matching.inverse import (
    contract_fee,
    contract_worth,
    harmonic_mean,
    is_inverse_perpetual,
)
from trademesh.core.domain.model import (
    Amendment,
    Execution,
    Fill,
    Instrument,
    InstrumentKind,
    Liquidity,
    Order,
    OrderRequest,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
)
from trademesh.core.platform.errors import FailedPrecondition, FieldViolation, InvalidArgument, NotFound

__all__ = ["FeeSchedule", "Margining", "OrderManager", "covers", "covers_on_arrival", "reducible"]

_ONE = Decimal(1)


@dataclass(frozen=True)
class FeeSchedule:
    maker: Decimal
    taker: Decimal
    asset: FeeAsset = FeeAsset.QUOTE  # the spot fee's asset (perpetuals pay in the settle asset)

    @property
    def quote_on_buy(self) -> bool:
        """A spot buy pays its fee in the quote it spends (so it locks it), not the base it gets."""
        return self.asset is FeeAsset.QUOTE

    def rate(self, liquidity: Liquidity) -> Decimal:
        return self.maker if liquidity is Liquidity.MAKER else self.taker

    @property
    def lock_rate(self) -> Decimal:
        # A resting buy may fill as maker or taker; lock for the dearer of the two.
        return max(self.maker, self.taker)


class Margining(Protocol):
    """The margin of margined perpetuals (margin_account.MarginAccount): what an order locks as
    initial margin, and the position margin a fill holds or releases."""

    def order_rate(self, symbol: str) -> Decimal: ...

    def after_fill(self, symbol: str, before: Decimal, side: Side, price: Decimal, size: Decimal) -> None: ...


class _Managed:
    __slots__ = (
        "engine_id",
        "face",
        "former_ids",
        "instrument",
        "margin_rate",
        "multiplier",
        "notional",
        "order",
        "perpetual",
        "reserve_asset",
        "reserved",
        "unit_reserve",
    )

    def __init__(self, order: Order, instrument: Instrument, engine_id: int) -> None:
        self.order = order
        self.instrument = instrument
        self.engine_id = engine_id
        self.perpetual = instrument.kind is InstrumentKind.PERPETUAL
        # An inverse perpetual's face value a contract (inverse.py); None for any other market.
        self.face = instrument.contract_value if is_inverse_perpetual(instrument) else None
        # Quote value of one unit of size at a price of 1: a linear contract's size (OKX's
        # BTC-USDT-SWAP: 0.01 BTC a contract), 1 for spot (an inverse one's is its face, above).
        self.multiplier = instrument.contract_size if self.perpetual else _ONE
        if self.perpetual:
            self.reserve_asset = instrument.settle_asset
        elif order.side is Side.BUY:
            self.reserve_asset = instrument.quote_asset
        else:
            self.reserve_asset = instrument.base_asset
        self.reserved = Decimal(0)
        # A margined perpetual's order: the share of its notional locked as initial margin.
        self.margin_rate = Decimal(0)
        # Locked per unit of size; None for a market buy, whose lock follows the fill prices.
        self.unit_reserve: Decimal | None = None
        self.notional = Decimal(0)
        # The order as it ended under each client order id an amendment renamed it from: CANCELED
        # ("amended in place: now <id>"), what GetOrder, CancelOrder and PlaceOrder find by it.
        self.former_ids: dict[str, Order] = {}


def _worth(managed: _Managed, price: Decimal, size: Decimal) -> Decimal:
    """What `size` is worth at `price` in the asset the order locks fees in: price x size (x a
    linear contract's size), or an inverse perpetual's contracts in the coin."""
    if managed.face is None:
        return price * size * managed.multiplier
    return contract_worth(managed.face, price, size)


class OrderManager:
    def __init__(
        self,
        venue: str,
        accounts: Accounts,
        fees: FeeSchedule,
        clock: Callable[[], int],
        emit: Callable[[Execution], None],
        closed_kept: int = 10_000,
        margin: Margining | None = None,
    ) -> None:
        """`margin`: the perpetuals' margin (None: an order locks its fee only, no position margin)."""
        self.venue = venue
        self.margin = margin
        self.accounts = accounts
        self.fees = fees
        self._clock = clock
        self._emit = emit
        self._orders: dict[str, _Managed] = {}
        self._by_client: dict[str, str] = {}
        self._open: dict[int, _Managed] = {}
        # Order ids of closed orders, oldest closed first; at most _closed_kept of them.
        self._closed: deque[str] = deque()
        self._closed_kept = max(closed_kept, 1)
        self._fill_seq = 0
        self._client_seq = 0

    # ---- placement

    def duplicate(self, client_order_id: str) -> Order | None:
        """The first order placed with this client order id, if any (as it ended under it, when
        an amendment renamed it since)."""
        order_id = self._by_client.get(client_order_id) if client_order_id else None
        return None if order_id is None else self._view(self._orders[order_id], client_order_id)

    def prepare(self, req: OrderRequest, instrument: Instrument) -> OrderRequest:
        """Defensive validation, then the reduce-only trim; returns the request to place."""
        violations = _violations(req, instrument)
        if violations:
            raise InvalidArgument(violations)
        if req.reduce_only:
            req = dataclasses.replace(req, size=self._reduce_only_size(req))
        return req

    def market_buy_lock(self, cost: Decimal) -> Decimal:
        return cost * (_ONE + self.fees.taker) if self.fees.quote_on_buy else cost

    def market_lock(self, perpetual: bool, cost: Decimal) -> Decimal:
        """What a market order locks for `cost` of walking the book: a spot buy its cost and
        taker fee, a perpetual order its taker fee only."""
        return cost * self.fees.taker if perpetual else self.market_buy_lock(cost)

    def accept(
        self, req: OrderRequest, instrument: Instrument, engine_id: int, market_cost: Decimal
    ) -> Order:
        """Lock funds and record the order as OPEN; FailedPrecondition when funds are short.

        `market_cost` is the quote cost of walking the book, used for market buys only.
        """
        managed = _Managed(self._new_order(req, engine_id), instrument, engine_id)
        unit, amount = self._reserve_for(req, market_cost, managed)
        self.accounts.lock(managed.reserve_asset, amount)
        managed.unit_reserve, managed.reserved = unit, amount
        self._record(managed)
        self._open[engine_id] = managed
        return self._publish(managed, None)

    def accept_stop(self, req: OrderRequest, instrument: Instrument, engine_id: int) -> Order:
        """Record a stop order as OPEN and untriggered; it locks nothing until it triggers."""
        managed = _Managed(self._new_order(req, engine_id), instrument, engine_id)
        self._record(managed)
        self._open[engine_id] = managed
        return self._publish(managed, None)

    def triggered_request(self, engine_id: int) -> OrderRequest | None:
        """What a stop whose trigger was crossed places now: a market or limit order of its
        remaining size (a reduce-only one trimmed to the position). None when it ended instead
        (a reduce-only stop with no position left to reduce: EXPIRED)."""
        order = self._open[engine_id].order
        size = order.remaining
        if order.reduce_only:
            room = reducible(order.side, self.accounts.position_size(order.symbol))
            if room == 0:
                self.close(
                    engine_id, OrderStatus.EXPIRED, "reduce-only stop triggered with no position to reduce"
                )
                return None
            size = min(size, room)
            order.size = order.filled_size + size
        return OrderRequest(
            symbol=order.symbol,
            side=order.side,
            type=order.type.triggered_type,
            size=size,
            price=order.price,
            time_in_force=order.time_in_force,
            reduce_only=order.reduce_only,
            client_order_id=order.client_order_id,
        )

    def trigger(self, engine_id: int, req: OrderRequest, market_cost: Decimal) -> bool:
        """Lock the funds of a triggered stop and report it triggered; False when the funds are
        short (the order is then REJECTED). `req` is what triggered_request() returned."""
        managed = self._open[engine_id]
        order = managed.order
        order.triggered = True
        order.updated_ns = self._clock()
        unit, amount = self._reserve_for(req, market_cost, managed)
        try:
            self.accounts.lock(managed.reserve_asset, amount)
        except FailedPrecondition as exc:
            self.close(engine_id, OrderStatus.REJECTED, f"stop triggered, but {exc}")
            return False
        managed.unit_reserve, managed.reserved = unit, amount
        self._publish(managed, None)
        return True

    def liquidate(
        self, instrument: Instrument, side: Side, size: Decimal, price: Decimal, fee: Decimal, engine_id: int
    ) -> Order:
        """The engine's own order closing a position by liquidation (client order id
        "liq-<engine id>", Order.liquidation): OPEN, then FILLED by one liquidation fill of
        `size` at `price` paying `fee`. It locks nothing."""
        req = OrderRequest(
            symbol=instrument.symbol,
            side=side,
            type=OrderType.MARKET,
            size=size,
            price=None,
            time_in_force=TimeInForce.IOC,
            reduce_only=True,
            client_order_id=f"liq-{engine_id}",
        )
        managed = _Managed(self._new_order(req, engine_id), instrument, engine_id)
        managed.order.liquidation = True
        managed.unit_reserve = Decimal(0)
        self._record(managed)
        self._open[engine_id] = managed
        self._publish(managed, None)
        self._settle(managed, price, size, fee)
        self._advance(managed, price, size)
        self._release(managed)
        fill = self._fill(managed, price, size, fee, Liquidity.TAKER, f"liq-{engine_id}")
        return self._publish(managed, fill)

    def reject(self, req: OrderRequest, instrument: Instrument, engine_id: int, reason: str) -> Order:
        managed = _Managed(self._new_order(req, engine_id), instrument, engine_id)
        managed.order.status = OrderStatus.REJECTED
        managed.order.status_reason = reason
        self._record(managed)
        snapshot = self._publish(managed, None)
        self._retire(managed)
        return snapshot

    # ---- amendment (docs/venues.md, "Amending an order")

    def amended_request(self, engine_id: int, change: Amendment) -> OrderRequest:
        """The open order as `change` makes it (size: its new total), checked against its
        instrument: InvalidArgument naming the field, FailedPrecondition for a stop already
        triggered or a reduce-only order with nothing left to reduce."""
        managed = self._open[engine_id]
        order = managed.order
        waiting = order.type.is_stop and not order.triggered
        if change.trigger_price is not None and not waiting:
            if not order.type.is_stop:
                raise InvalidArgument.field("trigger_price", "is for stop orders only")
            raise FailedPrecondition(f"stop order {order.order_id} has triggered: its trigger is spent")
        if change.price is not None and not order.type.has_price:
            raise InvalidArgument.field("price", f"a {order.type.value} order has no limit price")
        size = order.size if change.size is None else change.size
        req = OrderRequest(
            symbol=order.symbol,
            side=order.side,
            type=order.type if waiting else order.type.triggered_type,
            size=size,
            price=order.price if change.price is None else change.price,
            time_in_force=order.time_in_force,
            post_only=order.post_only,
            reduce_only=order.reduce_only,
            client_order_id=change.client_order_id or order.client_order_id,
            trigger_price=(order.trigger_price if change.trigger_price is None else change.trigger_price)
            if waiting
            else None,
        )
        violations = _violations(req, managed.instrument)
        if size <= order.filled_size:
            violations.append(
                FieldViolation(
                    "size", f"must be above the size filled so far, {format_decimal(order.filled_size)}"
                )
            )
        if violations:
            raise InvalidArgument(violations)
        if order.reduce_only:
            req = dataclasses.replace(req, size=order.filled_size + self._reduce_only_room(req, engine_id))
        return req

    def amend(self, engine_id: int, req: OrderRequest, reason: str) -> Order:
        """Change the open order to `req` (from amended_request): its lock follows the new price
        and size first (FailedPrecondition when funds are short: nothing changed), then an
        order update with `reason`."""
        managed = self._open[engine_id]
        order = managed.order
        if managed.unit_reserve is not None:
            unit, _ = self._reserve_for(req, Decimal(0), managed)
            assert unit is not None  # a resting order has a price
            wanted = unit * (req.size - order.filled_size)
            if wanted > managed.reserved:
                self.accounts.lock(managed.reserve_asset, wanted - managed.reserved)
            elif wanted < managed.reserved:
                self.accounts.unlock(managed.reserve_asset, managed.reserved - wanted)
            managed.unit_reserve, managed.reserved = unit, wanted
        if req.client_order_id != order.client_order_id:
            managed.former_ids[order.client_order_id] = dataclasses.replace(
                order,
                status=OrderStatus.CANCELED,
                status_reason=f"amended in place: now {req.client_order_id}",
                updated_ns=self._clock(),
            )
            order.client_order_id = req.client_order_id
            self._by_client[req.client_order_id] = order.order_id
        order.price, order.size = req.price, req.size
        if order.type.is_stop and not order.triggered:
            order.trigger_price = req.trigger_price
        order.status_reason = reason
        order.updated_ns = self._clock()
        return self._publish(managed, None)

    def _reduce_only_room(self, req: OrderRequest, engine_id: int) -> Decimal:
        """What a reduce-only order being amended may still have left: its new remaining size,
        trimmed to the position less what the other orders covering it hold."""
        position = self.accounts.position_size(req.symbol)
        pending = sum(
            (
                m.order.remaining
                for m in self._open.values()
                if m.engine_id != engine_id and covers(m.order, req)
            ),
            Decimal(0),
        )
        available = reducible(req.side, position) - pending
        if available <= 0:
            raise FailedPrecondition(
                f"reduce_only order would increase the position: other reduce_only orders already "
                f"cover the {req.symbol} position of {format_decimal(position)}"
            )
        filled = self._open[engine_id].order.filled_size
        return min(req.size - filled, available)

    # ---- lifecycle

    def fill(
        self, engine_id: int, price: Decimal, size: Decimal, liquidity: Liquidity, trade_id: str
    ) -> None:
        managed = self._open[engine_id]
        rate = self.fees.rate(liquidity)
        if self._fee_in_base(managed):
            fee = size * rate
        elif managed.face is None:
            fee = price * size * managed.multiplier * rate
        else:
            fee = contract_fee(managed.face, price, size, rate)
        self._settle(managed, price, size, fee)
        self._advance(managed, price, size)
        if managed.order.status is OrderStatus.FILLED:
            self._release(managed)
        self._publish(managed, self._fill(managed, price, size, fee, liquidity, trade_id))

    def trim(self, engine_id: int, remaining: Decimal, reason: str) -> Order:
        """Cut an open order down to `remaining` (less than it has left; more than 0): an order
        update with the new size and `reason`, and the lock of what was cut is released."""
        managed = self._open[engine_id]
        order = managed.order
        cut = order.remaining - remaining
        if not 0 < remaining < order.remaining or managed.unit_reserve is None:
            raise RuntimeError(f"cannot trim order {order.order_id} from {order.remaining} to {remaining}")
        released = managed.unit_reserve * cut
        self.accounts.unlock(managed.reserve_asset, released)
        managed.reserved -= released
        order.size -= cut
        order.status_reason = reason
        order.updated_ns = self._clock()
        return self._publish(managed, None)

    def close(self, engine_id: int, status: OrderStatus, reason: str) -> Order:
        """End an open order (CANCELED, EXPIRED, REJECTED) and unlock what it still holds."""
        managed = self._open[engine_id]
        managed.order.status = status
        managed.order.status_reason = reason
        managed.order.updated_ns = self._clock()
        self._release(managed)
        return self._publish(managed, None)

    # ---- queries

    def find(self, order_id: str | None, client_order_id: str | None) -> Order:
        """The order; named by a client order id an amendment renamed it from, the order as it
        ended under that id (CANCELED: it goes on under its new id)."""
        return self._view(self._find(order_id, client_order_id), client_order_id)

    def _view(self, managed: _Managed, client_order_id: str | None) -> Order:
        former = managed.former_ids.get(client_order_id) if client_order_id else None
        return self._snapshot(managed) if former is None else dataclasses.replace(former)

    def open_orders(self, symbol: str | None = None) -> list[Order]:
        found = [m for m in self._open.values() if symbol is None or m.order.symbol == symbol]
        found.sort(key=lambda m: m.engine_id)
        return [self._snapshot(m) for m in found]

    def open_prices(self, symbol: str) -> list[Decimal]:
        """The limit and trigger prices of a symbol's open orders (no order copied)."""
        prices = []
        for managed in self._open.values():
            order = managed.order
            if order.symbol == symbol:
                if order.price is not None:
                    prices.append(order.price)
                if order.trigger_price is not None:
                    prices.append(order.trigger_price)
        return prices

    def is_open(self, engine_id: int) -> bool:
        return engine_id in self._open

    def reduce_only_side(self, engine_id: int) -> Side | None:
        """The side of an open reduce-only order; None for any other order."""
        managed = self._open.get(engine_id)
        if managed is None or not managed.order.reduce_only:
            return None
        return managed.order.side

    def reduce_only_orders(self, symbol: str) -> list[Order]:
        """The open reduce-only orders of a symbol that work (in the book or taking; not the
        waiting stops), oldest first."""
        found = [
            m
            for m in self._open.values()
            if m.order.reduce_only
            and m.order.symbol == symbol
            and not (m.order.type.is_stop and not m.order.triggered)
        ]
        found.sort(key=lambda m: m.engine_id)
        return [self._snapshot(m) for m in found]

    # ---- internals

    def _find(self, order_id: str | None, client_order_id: str | None) -> _Managed:
        if not order_id and not client_order_id:
            raise InvalidArgument.field("order_id", "order_id or client_order_id is required")
        if not order_id:
            order_id = self._by_client.get(client_order_id or "")
            if order_id is None:
                raise NotFound(f"no order with client_order_id {client_order_id!r}{self._kept_note()}")
        managed = self._orders.get(order_id)
        if managed is None:
            raise NotFound(f"no order with order_id {order_id!r}{self._kept_note()}")
        if client_order_id and client_order_id not in (managed.order.client_order_id, *managed.former_ids):
            raise NotFound(f"order {order_id!r} does not have client_order_id {client_order_id!r}")
        return managed

    def _new_order(self, req: OrderRequest, engine_id: int) -> Order:
        now = self._clock()
        return Order(
            venue=self.venue,
            order_id=str(engine_id),
            client_order_id=req.client_order_id or self._generate_client_id(),
            symbol=req.symbol,
            side=req.side,
            type=req.type,
            time_in_force=req.time_in_force,
            price=req.price,
            size=req.size,
            post_only=req.post_only,
            reduce_only=req.reduce_only,
            created_ns=now,
            updated_ns=now,
            trigger_price=req.trigger_price,
        )

    def _generate_client_id(self) -> str:
        while True:
            self._client_seq += 1
            candidate = f"sim-{self._client_seq}"
            if candidate not in self._by_client:
                return candidate

    def _record(self, managed: _Managed) -> None:
        self._orders[managed.order.order_id] = managed
        self._by_client[managed.order.client_order_id] = managed.order.order_id

    def _reserve_for(
        self, req: OrderRequest, market_cost: Decimal, managed: _Managed
    ) -> tuple[Decimal | None, Decimal]:
        """(lock per unit of size or None, amount to lock now)."""
        if managed.perpetual:
            rate = self._margin_rate(req)
            managed.margin_rate = rate
            if req.price is None:
                return None, market_cost * (self.fees.taker + rate)
            unit = _worth(managed, req.price, _ONE) * (self.fees.lock_rate + rate)
            return unit, unit * req.size
        if req.side is Side.SELL:
            return _ONE, req.size
        if req.price is None:
            return None, self.market_buy_lock(market_cost)
        unit = req.price * (_ONE + self.fees.lock_rate) if self.fees.quote_on_buy else req.price
        return unit, unit * req.size

    def _margin_rate(self, req: OrderRequest) -> Decimal:
        """The initial margin share a perpetual order locks: none reduce-only or unmargined."""
        if self.margin is None or req.reduce_only:
            return Decimal(0)
        return self.margin.order_rate(req.symbol)

    def _fee_in_base(self, managed: _Managed) -> bool:
        return not managed.perpetual and managed.order.side is Side.BUY and not self.fees.quote_on_buy

    def _fee_asset(self, managed: _Managed) -> str:
        if managed.perpetual:
            return managed.reserve_asset
        instrument = managed.instrument
        return instrument.base_asset if self._fee_in_base(managed) else instrument.quote_asset

    def _settle(self, managed: _Managed, price: Decimal, size: Decimal, fee: Decimal) -> None:
        order, instrument = managed.order, managed.instrument
        released = self._released_by(managed, price, size)
        if managed.perpetual:
            before = self.accounts.position_size(order.symbol)
            realized = self.accounts.record_fill(order.symbol, order.side, price, size, managed.multiplier)
            self.accounts.settle_perp_fill(managed.reserve_asset, fee, released, realized)
            if self.margin is not None:
                self.margin.after_fill(order.symbol, before, order.side, price, size)
        else:
            base, quote = instrument.base_asset, instrument.quote_asset
            in_base = self._fee_in_base(managed)
            self.accounts.settle_spot_fill(base, quote, order.side, price, size, fee, released, in_base)
            # What the fill added to the holding: a fee taken from the base bought is not held.
            self.accounts.record_fill(order.symbol, order.side, price, size - fee if in_base else size)
        managed.reserved -= released

    def _advance(self, managed: _Managed, price: Decimal, size: Decimal) -> None:
        order = managed.order
        order.updated_ns = self._clock()
        order.filled_size += size
        if managed.face is None:
            managed.notional += price * size
            order.average_fill_price = exact_quotient(managed.notional, order.filled_size)
        else:  # the coin, unrounded: the average is the harmonic mean of the prices by face
            managed.notional += size * managed.face / price
            order.average_fill_price = harmonic_mean(order.filled_size * managed.face, managed.notional)
        order.status = OrderStatus.FILLED if order.remaining == 0 else OrderStatus.PARTIALLY_FILLED

    def _released_by(self, managed: _Managed, price: Decimal, size: Decimal) -> Decimal:
        if managed.unit_reserve is None and managed.perpetual:
            return _worth(managed, price, size) * (self.fees.taker + managed.margin_rate)
        if managed.unit_reserve is None:
            return self.market_lock(False, _worth(managed, price, size))
        return managed.unit_reserve * size

    def _release(self, managed: _Managed) -> None:
        if managed.reserved:
            self.accounts.unlock(managed.reserve_asset, managed.reserved)
            managed.reserved = Decimal(0)
        del self._open[managed.engine_id]
        self._retire(managed)

    def _retire(self, managed: _Managed) -> None:
        """The order closed: it joins the window of kept closed orders, pushing the oldest out."""
        self._closed.append(managed.order.order_id)
        while len(self._closed) > self._closed_kept:
            dropped = self._orders.pop(self._closed.popleft())
            for client_id in (dropped.order.client_order_id, *dropped.former_ids):
                if self._by_client.get(client_id) == dropped.order.order_id:
                    del self._by_client[client_id]

    def _kept_note(self) -> str:
        return f" (the sim keeps open orders and the last {self._closed_kept} closed ones)"

    def _reduce_only_size(self, req: OrderRequest) -> Decimal:
        position = self.accounts.position_size(req.symbol)
        if reducible(req.side, position) == 0:
            raise FailedPrecondition(
                f"reduce_only order would increase the position: {req.symbol} position is "
                f"{format_decimal(position)}"
            )
        pending = sum(
            (m.order.remaining for m in self._open.values() if covers(m.order, req)),
            Decimal(0),
        )
        available = abs(position) - pending
        if available <= 0:
            raise FailedPrecondition(
                f"reduce_only order would increase the position: open reduce_only orders already "
                f"cover the {req.symbol} position of {format_decimal(position)}"
            )
        return min(req.size, available)

    def _fill(
        self,
        managed: _Managed,
        price: Decimal,
        size: Decimal,
        fee: Decimal,
        liquidity: Liquidity,
        trade_id: str,
    ) -> Fill:
        self._fill_seq += 1
        order = managed.order
        return Fill(
            fill_id=str(self._fill_seq),
            order_id=order.order_id,
            client_order_id=order.client_order_id,
            symbol=order.symbol,
            side=order.side,
            price=price,
            size=size,
            fee=fee,
            fee_asset=self._fee_asset(managed),
            liquidity=liquidity,
            trade_id=trade_id,
            ts_event_ns=order.updated_ns,
            liquidation=order.liquidation,
        )

    def _publish(self, managed: _Managed, fill: Fill | None) -> Order:
        snapshot = self._snapshot(managed)
        self._emit(Execution(ts_event_ns=snapshot.updated_ns, order=snapshot, fill=fill))
        return snapshot

    @staticmethod
    def _snapshot(managed: _Managed) -> Order:
        return dataclasses.replace(managed.order)


def reducible(side: Side, position: Decimal) -> Decimal:
    """How much an order of `side` may reduce a position of signed size `position`: all of it
    when the order is against it, nothing on a flat position or on the position's own side."""
    if position == 0 or (position > 0) == (side is Side.BUY):
        return Decimal(0)
    return abs(position)


def covers(order: Order, req: OrderRequest) -> bool:
    """An open reduce-only order covering the same position as `req` (the trim at placement):
    waiting stops count against waiting stops, every other open order against the other
    orders."""
    waiting = order.type.is_stop and not order.triggered
    return _alike(order.reduce_only, order.symbol, order.side, waiting, req)


def covers_on_arrival(request: OrderRequest, req: OrderRequest) -> bool:
    """An order on its way to the sim that will cover the position `req` reduces once placed (a
    stop arrives waiting)."""
    return _alike(request.reduce_only, request.symbol, request.side, request.type.is_stop, req)


def _alike(reduce_only: bool, symbol: str, side: Side, waiting: bool, req: OrderRequest) -> bool:
    return reduce_only and symbol == req.symbol and side is req.side and waiting == req.type.is_stop


def _violations(req: OrderRequest, instrument: Instrument) -> list[FieldViolation]:
    out: list[FieldViolation] = []
    if req.symbol != instrument.symbol:
        out.append(FieldViolation("symbol", f"{req.symbol!r} is not {instrument.symbol!r}"))
    out.extend(_size_violations(req.size, instrument))
    if req.type.triggered_type is OrderType.MARKET:
        out.extend(_market_violations(req))
    else:
        out.extend(_limit_violations(req, instrument))
    out.extend(_trigger_violations(req, instrument))
    return out


def _trigger_violations(req: OrderRequest, instrument: Instrument) -> list[FieldViolation]:
    trigger = req.trigger_price
    if not req.type.is_stop:
        return [] if trigger is None else [FieldViolation("trigger_price", "is for stop orders only")]
    if trigger is None:
        return [FieldViolation("trigger_price", "is required for a stop order")]
    if trigger <= 0:
        return [FieldViolation("trigger_price", "must be positive")]
    if not is_multiple(trigger, instrument.tick_size):
        return [
            FieldViolation("trigger_price", f"must be a multiple of the tick size {instrument.tick_size}")
        ]
    return []


def _size_violations(size: Decimal, instrument: Instrument) -> list[FieldViolation]:
    if size <= 0:
        return [FieldViolation("size", "must be positive")]
    if not is_multiple(size, instrument.lot_size):
        return [FieldViolation("size", f"must be a multiple of the lot size {instrument.lot_size}")]
    if size < instrument.min_size:
        return [FieldViolation("size", f"must be at least {instrument.min_size}")]
    return []


def _market_violations(req: OrderRequest) -> list[FieldViolation]:
    out: list[FieldViolation] = []
    if req.price is not None:
        out.append(FieldViolation("price", "must be empty for a market order"))
    if req.post_only:
        out.append(FieldViolation("post_only", "a market order cannot be post-only"))
    return out


def _limit_violations(req: OrderRequest, instrument: Instrument) -> list[FieldViolation]:
    price = req.price
    if price is None:
        return [FieldViolation("price", "is required for a limit order")]
    if price <= 0:
        return [FieldViolation("price", "must be positive")]
    if not is_multiple(price, instrument.tick_size):
        return [FieldViolation("price", f"must be a multiple of the tick size {instrument.tick_size}")]
    if req.size > 0 and instrument.notional(req.size, price) < instrument.min_notional:
        return [FieldViolation("size", f"notional must be at least {instrument.min_notional}")]
    return []
