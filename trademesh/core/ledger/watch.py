"""WatchTransfers: the transfers the ledger posts, fanned out live to each watcher whose filter
they match. A watcher a whole queue behind is ended with RESOURCE_EXHAUSTED (watch again)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from trademesh.core.ledger.convert import transfer_to_pb
from trademesh.core.ledger.engine.model import Account, Transfer
from trademesh.core.platform.errors import ResourceExhausted
from trademesh.core.platform.rpc.outbox import Outbox
from trademesh.ledger.v1 import ledger_pb2 as lg

__all__ = ["TransferWatch", "Watcher"]

_QUEUE = 10_000


@dataclass
class Watcher:
    venue: str
    strategy_id: str
    outbox: Outbox[lg.Transfer]

    def matches(self, transfer: Transfer, accounts: Mapping[str, Account]) -> bool:
        if self.strategy_id and transfer.links.strategy_id != self.strategy_id:
            return False
        if not self.venue:
            return True
        account = accounts.get(transfer.debit_account_id)
        return account is not None and account.key.venue == self.venue


class TransferWatch:
    def __init__(self) -> None:
        self._watchers: list[Watcher] = []

    def add(self, venue: str, strategy_id: str) -> Watcher:
        watcher = Watcher(venue, strategy_id, Outbox(_QUEUE))
        self._watchers.append(watcher)
        return watcher

    def remove(self, watcher: Watcher) -> None:
        if watcher in self._watchers:
            self._watchers.remove(watcher)

    def publish(self, transfers: Sequence[Transfer], accounts: Mapping[str, Account]) -> None:
        for watcher in list(self._watchers):
            for transfer in transfers:
                if watcher.matches(transfer, accounts) and not watcher.outbox.offer(
                    transfer_to_pb(transfer, accounts)
                ):
                    self.remove(watcher)
                    watcher.outbox.end(
                        ResourceExhausted("the watcher fell a whole queue behind: watch again")
                    )
                    break

    async def end(self) -> None:
        """The service is stopping: every watch ends cleanly."""
        for watcher in self._watchers:
            watcher.outbox.end()
        self._watchers.clear()
