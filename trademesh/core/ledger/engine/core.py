"""LedgerCore: the ledger as an engine core.

    core = LedgerCore(accounts, balances)       # empty, or rebuilt from the store's balances
    posting = core.post(event)                  # FillEvent | FundingEvent | DepositEvent
    posting.chain                               # the chain kept (store it), or None
    posting.refusal                             # "" when posted, else why (nothing changed)
    core.apply(chain)                           # a stored chain, when the shell reloads
    core.position(venue, symbol, strategy)      # (quantity, cost basis) from the balances
    core.positions(); core.pnl(marks)           # reports.positions and reports.pnl of its books

The core's state is exactly its accounts and balances (and the margin holds they imply): a
core rebuilt from them posts the same chains as one that never stopped. Pure: no clock, no
I/O; times come with the events (docs/ledger.md).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal, localcontext

from trademesh.core.ledger.engine import chart
from trademesh.core.ledger.engine.books import Books, Staged
from trademesh.core.ledger.engine.events import Event
from trademesh.core.ledger.engine.model import Account, Chain, LedgerBalance
from trademesh.core.ledger.engine.postings import build, open_holds
from trademesh.core.ledger.engine.reports import Parts, PnlLine, PositionView, positions, priced, realised
from trademesh.core.platform.errors import FailedPrecondition

__all__ = ["RECENT_TRANSFERS", "LedgerCore", "Posting"]

# How many transfer ids of its own lifetime the core remembers to refuse a chain twice.
RECENT_TRANSFERS = 200_000
# Digits the core computes with: sums and products of amounts stay exact far past any balance.
_PRECISION = 60


@dataclass(frozen=True)
class Posting:
    """What `post` did: the chain it kept, or (chain None) the reason it kept nothing."""

    chain: Chain | None
    refusal: str = ""

    @property
    def posted(self) -> bool:
        return self.chain is not None


class LedgerCore:
    def __init__(
        self,
        accounts: Iterable[Account] = (),
        balances: Mapping[str, LedgerBalance] | None = None,
        recent: int = RECENT_TRANSFERS,
    ) -> None:
        """The books as stored: accounts and their balances (copied). Open margin holds are
        named from the balances (postings.open_holds)."""
        self._books = Books(accounts, balances)
        for hold in open_holds(self._books):
            self._books.pending[hold.id] = hold
        self._recent: deque[str] = deque()
        self._seen: set[str] = set()
        self._limit = recent
        # What the reports read of the books, kept until the next chain moves them: the
        # positions, and the realised parts of PnL per venue ("": all); PnL's unrealised part
        # is the only one that moves with the marks.
        self._positions: list[PositionView] | None = None
        self._realised: dict[str, Parts] = {}

    @property
    def accounts(self) -> Mapping[str, Account]:
        return self._books.accounts

    @property
    def balances(self) -> Mapping[str, LedgerBalance]:
        """Running balances by account id (the core's own: read, do not change)."""
        return self._books.balances

    @property
    def books(self) -> Books:
        return self._books

    def position(self, venue: str, symbol: str, strategy: str) -> tuple[Decimal, Decimal]:
        """(quantity in the base asset, < 0 short; cost basis in the quote asset, < 0 short)."""
        return self._books.position(venue, symbol, strategy)

    def margin(self, venue: str, symbol: str, strategy: str, quote: str) -> Decimal:
        """The initial margin a perpetual position holds."""
        return self._books.balance(chart.margin_locked(venue, symbol, strategy, quote)).debits_pending

    def positions(self) -> list[PositionView]:
        """reports.positions of the books (read again only after a chain was kept)."""
        if self._positions is None:
            self._positions = positions(self.accounts, self.balances)
        return list(self._positions)

    def pnl(
        self, marks: Mapping[tuple[str, str], Decimal] | None = None, venue: str = ""
    ) -> dict[tuple[str, str], PnlLine]:
        """reports.pnl of the books: the realised parts as last read since a chain was kept,
        the unrealised at `marks`."""
        sums = self._realised.get(venue)
        if sums is None:
            sums = self._realised[venue] = realised(self.accounts, self.balances, venue)
        if self._positions is None:
            self._positions = positions(self.accounts, self.balances)
        return priced(sums, self._positions, marks, venue)

    def post(self, event: Event) -> Posting:
        """Book `event`: its chain, checked and kept whole, or refused whole."""
        with localcontext() as context:
            context.prec = _PRECISION
            try:
                chain = build(self._books, event)
            except FailedPrecondition as exc:
                return Posting(None, f"event {event.event_id}: {exc}")
            refusal = self._refusal(chain)
            staged = self._books.stage(chain) if not refusal else Staged(refusal=refusal)
        if staged.refusal:
            return Posting(None, f"event {event.event_id}: {staged.refusal}")
        self._keep(chain, staged)
        return Posting(chain)

    def apply(self, chain: Chain) -> None:
        """Keep a chain posted before (the store's, on reload): checked like a new one;
        FailedPrecondition if it cannot be applied, and then nothing changes."""
        with localcontext() as context:
            context.prec = _PRECISION
            refusal = self._refusal(chain)
            staged = self._books.stage(chain) if not refusal else Staged(refusal=refusal)
        if staged.refusal:
            raise FailedPrecondition(f"chain {chain.event_id}: {staged.refusal}")
        self._keep(chain, staged)

    def _refusal(self, chain: Chain) -> str:
        if not chain.transfers:
            return "nothing to post"
        ids = [transfer.id for transfer in chain.transfers]
        if len(set(ids)) != len(ids):
            return "a transfer id repeats within the chain"
        for transfer_id in ids:
            if transfer_id in self._seen:
                return f"transfer {transfer_id} was posted already (the event was posted before)"
        return ""

    def _keep(self, chain: Chain, staged: Staged) -> None:
        self._books.commit(staged)
        self._positions = None
        self._realised.clear()
        for transfer in chain.transfers:
            self._seen.add(transfer.id)
            self._recent.append(transfer.id)
        while len(self._recent) > self._limit:
            self._seen.discard(self._recent.popleft())
