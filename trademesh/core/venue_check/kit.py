"""The venue under test, as the checks see it: its stubs under each role, what GetStatus and
ListInstruments said at the start, the instrument the checks trade, and the orders the kit placed
(so that it leaves the venue flat).
"""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from trademesh.admin.v1 import admin_pb2 as admin
from trademesh.common.v1 import common_pb2 as common
from trademesh.core.venue_check.results import BadTarget, fail
from trademesh.core.venue_check.wire import Role, Stubs, open_stubs
from trademesh.marketdata.v1 import marketdata_pb2 as md
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf

if TYPE_CHECKING:
    from trademesh.core.venue_check.market import MarketObservation

__all__ = ["Kit", "KitOptions"]

# Streams are bounded by their check's own deadline; this is the backstop of every stream call.
_STREAM_TIMEOUT_S = 120.0
_TERMINAL = frozenset(
    {tf.ORDER_STATUS_FILLED, tf.ORDER_STATUS_CANCELED, tf.ORDER_STATUS_REJECTED, tf.ORDER_STATUS_EXPIRED}
)


@dataclass(frozen=True)
class KitOptions:
    address: str  # HOST:PORT
    # The secrets' values (read from the environment by the command, never from its arguments).
    mesh_token: str = field(repr=False)
    trade_token: str = field(repr=False)
    symbol: str | None = None  # the instrument to trade; None: the first tradable one
    call_timeout_s: float = 10.0  # the deadline of every unary call
    # Where the tokens came from (the variables' names), for the messages that refuse them.
    mesh_token_source: str = "TRADEMESH_TOKEN"
    trade_token_source: str = "TRADEMESH_TRADE_TOKEN"


class Kit:
    def __init__(self, options: KitOptions) -> None:
        self.options = options
        call, stream = options.call_timeout_s, _STREAM_TIMEOUT_S
        self.open = open_stubs(options.address, None, call, stream)
        self.mesh = open_stubs(options.address, options.mesh_token, call, stream)
        self.trade = open_stubs(options.address, options.trade_token, call, stream)
        self.status = admin.GetStatusResponse()
        self.instruments: list[common.Instrument] = []
        self.instruments_error: str | None = None
        self._instrument: common.Instrument | None = None
        self.placed: dict[str, tf.Order] = {}  # order_id -> the latest the kit saw of it
        self._run = secrets.token_hex(3)
        self._ids = 0
        self._observation: MarketObservation | None = None
        self._observing = asyncio.Lock()

    def stubs(self, role: Role) -> Stubs:
        return {Role.NONE: self.open, Role.MESH: self.mesh, Role.TRADE: self.trade}[role]

    async def close(self) -> None:
        for stubs in (self.open, self.mesh, self.trade):
            await stubs.close()

    @property
    def venue(self) -> str:
        return self.status.venue

    @property
    def instrument(self) -> common.Instrument:
        """The instrument the checks trade and subscribe to."""
        if self._instrument is None:
            fail(
                "no tradable instrument to check with "
                f"({self.instruments_error or 'ListInstruments listed none'})"
            )
        return self._instrument

    @property
    def symbol(self) -> str:
        return self.instrument.symbol

    @property
    def chosen_symbol(self) -> str:
        """The instrument's symbol, "" when there is none."""
        return "" if self._instrument is None else self._instrument.symbol

    def choose_instrument(self, listed: list[common.Instrument]) -> None:
        """The instrument of --symbol, else the first active one the venue streams a book of
        (GetStatus), else the first active one. BadTarget when --symbol is not listed."""
        self.instruments = listed
        wanted = self.options.symbol
        if wanted is not None:
            found = [i for i in listed if i.symbol == wanted]
            if not found:
                shown = ", ".join(i.symbol for i in listed[:5]) + (" ..." if len(listed) > 5 else "")
                raise BadTarget(
                    f"--symbol {wanted}: the venue lists no such instrument (it lists {shown or 'none'})"
                )
            self._instrument = found[0]
            return
        active = [i for i in listed if i.active]
        streamed = [i for i in active if md.CHANNEL_BOOK in self.streamed_channels(i.symbol)]
        chosen = streamed or active
        self._instrument = chosen[0] if chosen else None

    def streamed_channels(self, symbol: str) -> list[md.Channel.ValueType]:
        """The channels GetStatus lists a stream of for `symbol`, in the contract's order."""
        found = {
            s.channel
            for s in self.status.streams
            if s.symbol == symbol and s.channel != md.CHANNEL_UNSPECIFIED
        }
        return sorted(found)

    def client_order_id(self) -> str:
        """A client order id of this run: letters and digits only, short (every exchange takes it)."""
        self._ids += 1
        return f"vc{self._run}{self._ids:04d}"

    def owns(self, order: tf.Order) -> bool:
        return order.client_order_id.startswith(f"vc{self._run}")

    def saw(self, order: tf.Order) -> None:
        """Keeps the latest state of an order the kit placed."""
        if order.order_id:
            self.placed[order.order_id] = order

    def open_orders(self) -> list[str]:
        """The kit's orders not known to have ended."""
        return [i for i, o in self.placed.items() if o.status not in _TERMINAL]

    async def observation(self) -> MarketObservation:
        """The market data the kit read once for the subscribe checks (read on first use)."""
        from trademesh.core.venue_check.market import observe

        async with self._observing:
            if self._observation is None:
                self._observation = await observe(self)
            return self._observation
