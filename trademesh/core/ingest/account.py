"""One venue's account followed onto the bus: TradeFlow.StreamAccount -> account.{<venue>}
(bus.v1.AccountSnapshot; the relay: trademesh.core.platform.bus.account), which the recorder keeps in
`account_states`, so history holds what the account was (balances and positions), not only what
was traded.

Ingest owns it because it already follows every venue, under the venue's lease (one writer a
venue, fenced), with the mesh token, which reads StreamAccount (a READ method: no trading
credential). A stream lost (or a venue that serves no account yet) is opened again with a backoff
(up to 30 s; said once until it was up again), and its first answer is a snapshot again: history
gets the whole account at each reconnection. Each entry is written at least once (a retried flush
may repeat one): the recorder's key (venue, item, name, as_of_ns) keeps it once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from trademesh.core.ingest import metrics
from trademesh.core.ingest.dial import VenueDial
from trademesh.core.platform.aio.backoff import Backoff
from trademesh.core.platform.bus.account import AccountRelay
from trademesh.core.platform.bus.instruments import Publish
from trademesh.core.platform.logs.setup import bind_log_fields
from trademesh.core.platform.rpc.follow import follow
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf
from trademesh.tradeflow.v1 import tradeflow_pb2_grpc as tf_grpc

__all__ = ["AccountFollower"]

log = logging.getLogger(__name__)


class AccountFollower(AccountRelay):
    """The gRPC side of the relay: StreamAccount, opened again after a loss with a backoff."""

    def __init__(
        self, dial: VenueDial, publish: Publish, source: str, clock: Callable[[], int] = time.time_ns
    ) -> None:
        super().__init__(dial.venue, publish, source, clock)
        self.dial = dial

    async def run(self, stop: asyncio.Event) -> None:
        bind_log_fields(venue=self.venue, stream=self.stream)
        told = False
        before = self.published  # what was published when the lost stream was opened

        def lost(reason: str, delay: float) -> None:
            nonlocal told, before
            metrics.ACCOUNT_STREAM_LOSSES.labels(self.venue).inc()
            if self.published > before:  # it was up: this loss is news
                told = False
            before = self.published
            if not told:  # a venue without an account would say so every 30 s
                log.warning(
                    "ingest %s: account stream lost (%s); again in %.1f s", self.stream, reason, delay
                )
                told = True

        await follow(self._follow_once, stop, Backoff(0.5, 30.0), lost)

    async def _follow_once(self, backoff: Backoff) -> None:
        async with self.dial.channel() as channel:
            call = tf_grpc.TradeFlowStub(channel).StreamAccount(
                tf.StreamAccountRequest(), metadata=self.dial.metadata
            )
            async for response in call:
                backoff.reset()
                entry = await self.take(response)
                metrics.ACCOUNT_UPDATES.labels(self.venue, "snapshot" if entry.snapshot else "change").inc()
