"""Each venue's account as its TradeFlow.StreamAccount says it is: positions and balances kept
from the stream's snapshot and changes, for the reconciliation (trademesh.core.inspector.reconcile) to
read instead of asking GetPositions and GetBalances every round.

A venue's view is `live` from its stream's snapshot until the stream is lost; while it is not
(the venue away, or one that does not serve StreamAccount), the reconciliation asks as before.
How late each change comes (the venue's as_of_ns to its arrival here, on one host's clocks) is
the `trademesh_inspector_account_lag_seconds` histogram (docs/benchmarks.md §28); whether each
venue's stream is live, `trademesh_inspector_account_stream_up`, and how
often it was lost, `trademesh_inspector_account_stream_losses_total` (the alerts
AccountStreamDown and AccountStreamLagHigh, docs/alerts.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field

import grpc

from trademesh.core.inspector.metrics import ACCOUNT_LAG, ACCOUNT_STREAM_LOSSES, ACCOUNT_STREAM_UP
from trademesh.core.inspector.venues import VenueLinks
from trademesh.core.platform.aio.backoff import Backoff
from trademesh.core.platform.aio.retry import sleep_unless
from trademesh.core.platform.rpc.status import call_failure
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf

__all__ = ["AccountView", "VenueAccounts"]

log = logging.getLogger(__name__)


@dataclass
class AccountView:
    positions: dict[str, tf.Position] = field(default_factory=dict)
    balances: dict[str, tf.Balance] = field(default_factory=dict)
    live: bool = False
    changes: int = 0

    def apply(self, response: tf.StreamAccountResponse) -> None:
        if response.snapshot:
            self.positions.clear()
            self.balances.clear()
        self.positions.update((p.symbol, p) for p in response.positions)
        self.balances.update((b.asset, b) for b in response.balances)
        self.live = True
        if not response.snapshot:
            self.changes += 1


class VenueAccounts:
    def __init__(self, links: VenueLinks) -> None:
        self.links = links
        self.views: dict[str, AccountView] = {}

    def live(self, venue: str) -> AccountView | None:
        """The venue's account as streamed, when its stream is up."""
        view = self.views.get(venue)
        return view if view is not None and view.live else None

    async def follow(self, venue: str, stop: asyncio.Event) -> None:
        """Keep the venue's view from its account stream until `stop`, again after each loss,
        for as long as the venue is in the mesh (one that left is followed again if it comes
        back: trademesh.core.inspector.followers)."""
        view = self.views.setdefault(venue, AccountView())
        up, losses = ACCOUNT_STREAM_UP.labels(venue), ACCOUNT_STREAM_LOSSES.labels(venue)  # 0 from now
        up.set(0)
        backoff = Backoff(0.2, 5.0)
        told = False  # the loss logged once, until the stream is back
        while not stop.is_set() and venue in self.links.names():
            try:
                desk = self.links.desk(venue)
                call = desk.tradeflow.StreamAccount(tf.StreamAccountRequest(), metadata=desk.metadata)
                async for response in call:
                    backoff.reset()
                    told = False
                    self._heard(venue, view, response)
                    up.set(1)
                reason = "the venue ended the stream"
            except grpc.aio.AioRpcError as exc:
                reason = call_failure(exc)
            except Exception as exc:  # no such venue any more
                reason = str(exc)
            view.live = False
            up.set(0)
            losses.inc()
            delay = backoff.next()
            if not told:  # a venue without an account (no credentials) would say so every 5 s
                log.info("inspector: %s account stream lost (%s); asking instead meanwhile", venue, reason)
                told = True
            await sleep_unless(stop, delay)
        view.live = False
        # A venue gone from the mesh is no stream down (AccountStreamDown): its series goes too.
        with contextlib.suppress(KeyError):
            ACCOUNT_STREAM_UP.remove(venue)

    @staticmethod
    def _heard(venue: str, view: AccountView, response: tf.StreamAccountResponse) -> None:
        view.apply(response)
        if not response.snapshot and response.as_of_ns > 0:
            ACCOUNT_LAG.labels(venue).observe(max(time.time_ns() - response.as_of_ns, 0) / 1e9)
