"""The inspector's calls to the venues: TradeFlow (orders), Admin (the dead-man heartbeat) and
MarketData (marks), with the trading credential (TRADEMESH_TRADE_TOKEN) that only the
inspector holds. Addresses come from `--venue NAME=HOST:PORT` and the gateway's registry."""

from __future__ import annotations

from collections.abc import Sequence

import grpc

from trademesh.admin.v1 import admin_pb2 as adm
from trademesh.admin.v1 import admin_pb2_grpc as admin_grpc
from trademesh.common.v1 import common_pb2 as common
from trademesh.core.platform.errors import NotFound, shown
from trademesh.core.platform.rpc.channels import Upstreams
from trademesh.core.platform.rpc.client import Metadata, auth_metadata, trade_auth_metadata
from trademesh.core.platform.rpc.status import calling
from trademesh.core.tools.resolver import MeshResolver
from trademesh.ledger.v1 import ledger_pb2_grpc as lg_grpc
from trademesh.marketdata.v1 import marketdata_pb2 as md
from trademesh.marketdata.v1 import marketdata_pb2_grpc as md_grpc
from trademesh.tradeflow.v1 import tradeflow_pb2_grpc as tf_grpc

__all__ = ["LEDGER", "TRADEFLOW", "VenueDesk", "VenueLinks", "trade_metadata"]

TRADEFLOW = "trademesh.tradeflow.v1.TradeFlow"
LEDGER = "trademesh.ledger.v1.Ledger"
_LIST_TIMEOUT_S = 5.0


def trade_metadata(venue: str | None = None) -> Metadata:
    """The trading credential when set (it also reads), else the mesh token (reads only: a
    venue refuses the inspector's orders until it holds the trading credential). For an
    account's venue (`venue`), its own credential when that is set (docs/accounts.md)."""
    return trade_auth_metadata(venue) or auth_metadata()


class VenueDesk:
    """One venue's stubs over one channel."""

    def __init__(self, name: str, address: str, channel: grpc.aio.Channel) -> None:
        self.name = name
        self.address = address
        self.metadata = trade_metadata(name)  # the venue's trading credential (an account's own)
        self.tradeflow = tf_grpc.TradeFlowStub(channel)
        self.admin = admin_grpc.AdminStub(channel)
        self.marketdata = md_grpc.MarketDataStub(channel)


class VenueLinks:
    def __init__(self, resolver: MeshResolver, emulate_stops: bool = False) -> None:
        self.resolver = resolver
        self.metadata = trade_metadata()
        # Emulate stop-losses everywhere, even where the venue holds stop orders itself.
        self.emulate_stops = emulate_stops
        # The gateway's channel pool: keepalives, and a quick reconnect to a restarted venue.
        self._channels = Upstreams()
        self._desks: dict[str, VenueDesk] = {}
        self._stops: dict[str, bool] = {}  # venue -> takes stop orders natively
        self._amends: dict[str, bool] = {}  # venue -> amends orders in place
        self._leverage: dict[str, bool] = {}  # venue -> trades leveraged derivatives (SetLeverage)

    def native_stops(self, venue: str) -> bool:
        """Whether stop-losses go to the venue as stop orders (known once `learn` asked it)."""
        return not self.emulate_stops and self._stops.get(venue, False)

    def amends(self, venue: str) -> bool:
        """Whether the venue amends orders in place (known once `learn` asked it)."""
        return self._amends.get(venue, False)

    def leverage(self, venue: str) -> bool:
        """Whether the venue trades leveraged derivatives (capabilities.leverage: SetLeverage,
        GetLeverage; known once `learn` asked it)."""
        return self._leverage.get(venue, False)

    def knows(self, venue: str) -> bool:
        """Whether the venue has said what it can do (`learn` got its answer)."""
        return venue in self._stops

    async def learn(self, venue: str, timeout_s: float) -> None:
        """Ask the venue what it can do (Admin.GetStatus), once: a venue that does not answer
        stays unknown (`knows`) and is asked again next time."""
        if venue in self._stops:
            return
        try:
            status = await self.desk(venue).admin.GetStatus(
                adm.GetStatusRequest(), timeout=timeout_s, metadata=self.desk(venue).metadata
            )
        except grpc.aio.AioRpcError:
            return
        self._stops[venue] = status.capabilities.stop_orders
        self._amends[venue] = status.capabilities.amend == adm.AMEND_MODE_NATIVE
        self._leverage[venue] = status.capabilities.leverage

    def names(self) -> list[str]:
        return sorted(self.resolver.names(TRADEFLOW))

    def known(self, venue: str) -> None:
        """NotFound naming the venue when no venue of that name is given or registered: nothing
        is followed or asked of a venue nobody serves."""
        names = self.names()
        if venue not in names:
            serving = ", ".join(names) or "none is registered"
            raise NotFound(f"no venue {shown(venue)} in the mesh (venues: {serving})")

    async def list_instruments(self, venue: str) -> Sequence[common.Instrument]:
        """The venue's instruments (trademesh.core.domain.instruments keeps them); Unavailable when it does
        not answer."""
        with calling(f"venue {venue}: ListInstruments"):
            desk = self.desk(venue)
            answer = await desk.marketdata.ListInstruments(
                md.ListInstrumentsRequest(), timeout=_LIST_TIMEOUT_S, metadata=desk.metadata
            )
        return list(answer.instruments)

    def ledger(self) -> lg_grpc.LedgerAsyncStub | None:
        """The ledger's stub when exactly one ledger is registered (reconciliation reads its
        expected balances); None otherwise."""
        names = self.resolver.names(LEDGER)
        if len(names) != 1:
            return None
        channel = self._channels.channel(self.resolver.resolve(LEDGER, names[0]))
        stub: lg_grpc.LedgerAsyncStub = lg_grpc.LedgerStub(channel)
        return stub

    def desk(self, venue: str) -> VenueDesk:
        """The venue's stubs; NotFound when no such venue is known (given or registered)."""
        address = self.resolver.resolve(TRADEFLOW, venue)
        desk = self._desks.get(venue)
        if desk is None or desk.address != address:
            desk = self._desks[venue] = VenueDesk(venue, address, self._channels.channel(address))
        return desk

    async def close(self) -> None:
        await self._channels.close()
        self._desks.clear()
