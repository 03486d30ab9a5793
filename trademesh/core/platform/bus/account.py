"""A venue account's balances and positions relayed into account.{<venue>} (bus.v1.AccountSnapshot),
whoever reads them: ingest over gRPC (trademesh.core.ingest.account: TradeFlow.StreamAccount) or the venue
itself in process (trademesh.venues.runtime.direct: its account hub, the same answers).

Each answer of the venue is one entry, as it came: a stream's first is a snapshot (every balance and
position), then those that changed. The bus losing entries (a Redis restarted empty): the account as
the relay holds it goes out as a snapshot before the next change. An answer without the venue's
time (as_of_ns 0) is stamped with the relay's clock.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from trademesh.bus.v1 import bus_pb2 as bus
from trademesh.core.platform.bus.codec import encode_account
from trademesh.core.platform.bus.instruments import Publish
from trademesh.core.platform.bus.names import account_stream
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf

__all__ = ["AccountRelay"]


class AccountRelay:
    def __init__(
        self, venue: str, publish: Publish, source: str, clock: Callable[[], int] = time.time_ns
    ) -> None:
        self.venue = venue
        self.stream = account_stream(venue)
        self.balances: dict[str, tf.Balance] = {}
        self.positions: dict[str, tf.Position] = {}
        self.published = 0
        self._publish = publish
        self._source = source
        self._clock = clock
        self._restate = False

    def mark_bus_loss(self, since_ns: int) -> None:
        """The bus lost entries: the whole account goes out before the next change."""
        del since_ns
        self._restate = bool(self.balances or self.positions)

    async def take(self, response: tf.StreamAccountResponse) -> bus.AccountSnapshot:
        """One venue answer to the bus (a full snapshot first when the bus lost the account); the
        entry published."""
        as_of_ns = response.as_of_ns or self._clock()
        if response.snapshot:
            self.balances, self.positions = {}, {}
        self.balances.update((b.asset, b) for b in response.balances)
        self.positions.update((p.symbol, p) for p in response.positions)
        if self._restate and not response.snapshot:
            entry = self._whole(as_of_ns)
        else:
            entry = bus.AccountSnapshot(
                venue=self.venue,
                snapshot=response.snapshot,
                balances=response.balances,
                positions=response.positions,
                as_of_ns=as_of_ns,
            )
        self._restate = False
        await self._publish(self.stream, encode_account(self._source, entry))
        self.published += 1
        return entry

    def _whole(self, as_of_ns: int) -> bus.AccountSnapshot:
        return bus.AccountSnapshot(
            venue=self.venue,
            snapshot=True,
            balances=[self.balances[a] for a in sorted(self.balances)],
            positions=[self.positions[s] for s in sorted(self.positions)],
            as_of_ns=as_of_ns,
        )
