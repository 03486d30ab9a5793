"""The ledger's reads from the venues, with the mesh token (it holds no trading credential):
instruments (what a fill's symbol is: spot or perpetual, its assets, its contract size), a
perpetual's leverage in force, opening balances, and funding payments. Addresses come from
`--venue NAME=HOST:PORT` and the gateway's registry."""

from __future__ import annotations

import logging
from decimal import Decimal, InvalidOperation

import grpc

from trademesh.core.ledger.contracts import Contract
from trademesh.core.platform.errors import NotFound
from trademesh.core.platform.rpc.channels import Upstreams
from trademesh.core.platform.rpc.client import auth_metadata
from trademesh.core.tools.resolver import MeshResolver
from trademesh.marketdata.v1 import marketdata_pb2 as md
from trademesh.marketdata.v1 import marketdata_pb2_grpc as md_grpc
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf
from trademesh.tradeflow.v1 import tradeflow_pb2_grpc as tf_grpc

__all__ = ["TRADEFLOW", "LedgerVenues"]

log = logging.getLogger(__name__)

TRADEFLOW = "trademesh.tradeflow.v1.TradeFlow"
# The venue's answers that it keeps no leverage for the symbol: its fills are fully funded.
_NO_LEVERAGE = frozenset(
    {
        grpc.StatusCode.UNIMPLEMENTED,
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.FAILED_PRECONDITION,
    }
)


class LedgerVenues:
    def __init__(self, resolver: MeshResolver, timeout_s: float = 3.0) -> None:
        self.resolver = resolver
        self.timeout_s = timeout_s
        self.metadata = auth_metadata()
        self._channels = Upstreams()
        self._contracts: dict[tuple[str, str], Contract] = {}
        self._leverages: dict[tuple[str, str], Decimal] = {}  # the last known, per venue and symbol
        self._unleveraged: set[str] = set()  # venues that trade no leverage

    def names(self) -> list[str]:
        return sorted(self.resolver.names(TRADEFLOW))

    def _channel(self, venue: str) -> grpc.aio.Channel:
        return self._channels.channel(self.resolver.resolve(TRADEFLOW, venue))

    async def contract(self, venue: str, symbol: str) -> Contract:
        """The instrument, asked of the venue once; from the symbol when the venue cannot say."""
        known = self._contracts.get((venue, symbol))
        if known is None:
            known = await self._ask(venue, symbol) or Contract.from_symbol(symbol)
            self._contracts[(venue, symbol)] = known
        return known

    async def _ask(self, venue: str, symbol: str) -> Contract | None:
        try:
            stub = md_grpc.MarketDataStub(self._channel(venue))
            answer = await stub.ListInstruments(
                md.ListInstrumentsRequest(symbols=[symbol]), timeout=self.timeout_s, metadata=self.metadata
            )
        except (grpc.aio.AioRpcError, NotFound):
            return None
        for item in answer.instruments:
            if item.symbol == symbol:
                return Contract.from_instrument(item)
        return None

    async def leverage(self, venue: str, symbol: str) -> Decimal:
        """The leverage in force for a perpetual (TradeFlow.GetLeverage), asked when its fills are
        booked: the venues reckon a position's margin at it (docs/ledger.md, "Margin"). 1 (fully
        funded) where the venue trades no leverage (UNIMPLEMENTED, remembered) or has none for
        the symbol; the last answer, or 1, while the venue cannot answer."""
        if venue in self._unleveraged:
            return Decimal(1)
        try:
            stub = tf_grpc.TradeFlowStub(self._channel(venue))
            answer = await stub.GetLeverage(
                tf.GetLeverageRequest(symbol=symbol), timeout=self.timeout_s, metadata=self.metadata
            )
            found = Decimal(answer.setting.leverage)
        except grpc.aio.AioRpcError as exc:
            return self._without_leverage(venue, symbol, exc.code())
        except (NotFound, InvalidOperation):
            return self._leverages.get((venue, symbol), Decimal(1))
        if not found.is_finite() or found <= 0:
            return self._leverages.get((venue, symbol), Decimal(1))
        self._leverages[(venue, symbol)] = found
        return found

    def _without_leverage(self, venue: str, symbol: str, code: grpc.StatusCode) -> Decimal:
        if code == grpc.StatusCode.UNIMPLEMENTED:
            self._unleveraged.add(venue)
        if code in _NO_LEVERAGE:
            return Decimal(1)
        log.warning("ledger: the leverage of %s on %s: %s (the last known used)", symbol, venue, code.name)
        return self._leverages.get((venue, symbol), Decimal(1))

    async def balances(self, venue: str) -> list[tf.Balance]:
        stub = tf_grpc.TradeFlowStub(self._channel(venue))
        answer = await stub.GetBalances(
            tf.GetBalancesRequest(), timeout=self.timeout_s, metadata=self.metadata
        )
        return list(answer.balances)

    async def funding(self, venue: str, since_ns: int, limit: int) -> list[tf.FundingPayment]:
        """The venue's funding payments at or after `since_ns`, oldest first."""
        stub = tf_grpc.TradeFlowStub(self._channel(venue))
        request = tf.ListFundingPaymentsRequest(since_ns=since_ns, limit=limit)
        answer = await stub.ListFundingPayments(request, timeout=self.timeout_s, metadata=self.metadata)
        return list(answer.payments)

    async def close(self) -> None:
        await self._channels.close()
