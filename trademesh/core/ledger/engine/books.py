"""The books: accounts, their running balances and the open pending transfers, and how a chain
is applied to them, all or nothing, after TigerBeetle: each transfer in order, the accounts it
touches checked against their flags as it leaves them.

`stage(chain)` works on copies and gives the new balances or the reason the chain is refused;
`commit` keeps them. Nothing here knows the posting rules (postings.py) or the clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal

from trademesh.core.ledger.engine.chart import CODE_FLAGS, CODE_NAMES, QUANTITY_CODES, AccountCode
from trademesh.core.ledger.engine.model import (
    ZERO,
    Account,
    AccountFlag,
    AccountKey,
    Chain,
    LedgerBalance,
    LedgerId,
    Transfer,
    TransferFlag,
)

__all__ = ["Books", "Staged", "chain_balances", "describe", "flag_names"]

_PENDING = int(TransferFlag.PENDING)
_VOID = int(TransferFlag.VOID_PENDING)
_RESOLVES = int(TransferFlag.POST_PENDING | TransferFlag.VOID_PENDING)


def describe(key: AccountKey) -> str:
    """An account as a refusal names it: `venue_cash binance/USDT`, `spot_quantity
    binance/BTC/USDT strategy 'trend' (BTC)`."""
    name = CODE_NAMES.get(key.code, f"code {key.code}")
    where = f"{key.venue}/{key.symbol}" if key.symbol else key.venue
    text = f"{name} {where}"
    if key.strategy or key.symbol:
        text += f" strategy {key.strategy!r}"
    return f"{text} ({key.asset})" if key.symbol else f"{text}/{key.asset}"


def flag_names(flags: AccountFlag) -> str:
    return "|".join(flag.name or "" for flag in AccountFlag if flag and flags & flag) or "NONE"


def chain_balances(chain: Chain) -> dict[tuple[LedgerId, str], Decimal]:
    """Debits less credits of the chain per ledger and asset of the accounts each transfer
    touches (the transfer's own ledger and asset for an account the chain does not list).
    All zero for a chain whose every transfer stays within one ledger and asset."""
    keys = {account.id: account.key for account in chain.accounts}
    sums: dict[tuple[LedgerId, str], Decimal] = {}
    for transfer in chain.transfers:
        for account_id, sign in ((transfer.debit_account_id, 1), (transfer.credit_account_id, -1)):
            key = keys.get(account_id)
            where = (key.ledger, key.asset) if key else (transfer.ledger, transfer.asset)
            sums[where] = sums.get(where, ZERO) + sign * transfer.amount
    return sums


def _copy(balance: LedgerBalance) -> LedgerBalance:
    return LedgerBalance(
        balance.debits_posted,
        balance.credits_posted,
        balance.debits_pending,
        balance.credits_pending,
        balance.flags,
    )


@dataclass(frozen=True)
class Staged:
    """A chain applied to copies: the balances it changes, the accounts it creates, the pending
    transfers it opens (Transfer) or resolves (None); or `refusal`, and nothing else."""

    refusal: str = ""
    balances: Mapping[str, LedgerBalance] | None = None
    accounts: Mapping[str, Account] | None = None
    pending: Mapping[str, Transfer | None] | None = None


class Books:
    """Accounts, balances and open pending transfers; positions indexed by venue, symbol and
    strategy (their quantity, cost and margin accounts)."""

    def __init__(
        self, accounts: Iterable[Account] = (), balances: Mapping[str, LedgerBalance] | None = None
    ) -> None:
        self.accounts: dict[str, Account] = {}
        self.balances: dict[str, LedgerBalance] = {}
        self.pending: dict[str, Transfer] = {}
        # code -> (venue, symbol) -> strategy -> account, for the accounts kept per symbol
        self._index: dict[int, dict[tuple[str, str], dict[str, Account]]] = {}
        for account in accounts:
            self._add(account)
        for account_id, balance in (balances or {}).items():
            self.balances[account_id] = _copy(balance)

    def _add(self, account: Account) -> None:
        self.accounts[account.id] = account
        key = account.key
        if key.symbol:
            by_symbol = self._index.setdefault(key.code, {}).setdefault((key.venue, key.symbol), {})
            by_symbol[key.strategy] = account

    def account(self, key: AccountKey) -> Account:
        """The account of `key`: the stored one, or a new one with the chart's flags."""
        found = self.accounts.get(key.id)
        return found if found is not None else Account(key, CODE_FLAGS.get(key.code, AccountFlag.NONE))

    def balance(self, key: AccountKey) -> LedgerBalance:
        found = self.balances.get(key.id)
        return found if found is not None else LedgerBalance(flags=self.account(key).flags)

    def indexed(self, code: int, venue: str, symbol: str) -> dict[str, Account]:
        """The accounts of `code` kept for venue and symbol, by strategy."""
        return dict(self._index.get(code, {}).get((venue, symbol), {}))

    def quantity_account(self, venue: str, symbol: str, strategy: str) -> Account | None:
        for code in QUANTITY_CODES:
            found = self._kept(code, venue, symbol, strategy)
            if found is not None:
                return found
        return None

    def _kept(self, code: int, venue: str, symbol: str, strategy: str) -> Account | None:
        return self._index.get(code, {}).get((venue, symbol), {}).get(strategy)

    def position(self, venue: str, symbol: str, strategy: str) -> tuple[Decimal, Decimal]:
        """(quantity in the base asset, < 0 short; cost basis in the quote asset)."""
        quantity = self.quantity_account(venue, symbol, strategy)
        cost = self._kept(AccountCode.POSITION_COST, venue, symbol, strategy)
        qty = self.balance(quantity.key).net_debit if quantity else ZERO
        return qty, self.balance(cost.key).net_debit if cost else ZERO

    def stage(self, chain: Chain) -> Staged:
        """The chain applied to copies, or why it is refused (naming the transfer and account)."""
        new = {account.id: account for account in chain.accounts if account.id not in self.accounts}
        balances: dict[str, LedgerBalance] = {}
        pending: dict[str, Transfer | None] = {}
        for transfer in chain.transfers:
            refusal = self._stage_one(transfer, new, balances, pending)
            if refusal:
                return Staged(refusal=f"transfer {transfer.id} (code {transfer.code}): {refusal}")
        return Staged(balances=balances, accounts=new, pending=pending)

    def _stage_one(
        self,
        transfer: Transfer,
        new: Mapping[str, Account],
        balances: dict[str, LedgerBalance],
        pending: dict[str, Transfer | None],
    ) -> str:
        accounts = []
        for account_id in (transfer.debit_account_id, transfer.credit_account_id):
            account = self.accounts.get(account_id) or new.get(account_id)
            if account is None:
                return f"account {account_id} is unknown"
            if account.key.ledger != transfer.ledger or account.key.asset != transfer.asset:
                return f"{describe(account.key)} is not in ledger {int(transfer.ledger)} and {transfer.asset}"
            if account_id not in balances:
                stored = self.balances.get(account_id)
                balances[account_id] = _copy(stored) if stored else LedgerBalance(flags=account.flags)
            accounts.append(account)
        debit = balances[transfer.debit_account_id]
        credit = balances[transfer.credit_account_id]
        refusal = self._move(transfer, debit, credit, pending)
        if refusal:
            return refusal
        for account in accounts:
            broken = balances[account.id].violation()
            if broken:
                return f"{describe(account.key)}: {broken} ({flag_names(account.flags)})"
        return ""

    def _move(
        self,
        transfer: Transfer,
        debit: LedgerBalance,
        credit: LedgerBalance,
        pending: dict[str, Transfer | None],
    ) -> str:
        amount, flags = transfer.amount, int(transfer.flags)
        if flags & _PENDING:
            if transfer.id in self.pending or transfer.id in pending:
                return "the pending transfer exists already"
            debit.debits_pending += amount
            credit.credits_pending += amount
            pending[transfer.id] = transfer
            return ""
        if flags & _RESOLVES:
            held = (
                pending[transfer.pending_id]
                if transfer.pending_id in pending
                else self.pending.get(transfer.pending_id)
            )
            if held is None:
                return f"pending transfer {transfer.pending_id} is not open"
            if (held.debit_account_id, held.credit_account_id) != (
                transfer.debit_account_id,
                transfer.credit_account_id,
            ):
                return f"accounts differ from pending transfer {held.id}'s"
            voids = bool(flags & _VOID)
            if amount > held.amount or (voids and amount not in (ZERO, held.amount)):
                return f"amount {amount} does not resolve pending transfer {held.id} of {held.amount}"
            debit.debits_pending -= held.amount
            credit.credits_pending -= held.amount
            if not voids:
                debit.debits_posted += amount
                credit.credits_posted += amount
            pending[held.id] = None
            return ""
        debit.debits_posted += amount
        credit.credits_posted += amount
        return ""

    def commit(self, staged: Staged) -> None:
        for account in (staged.accounts or {}).values():
            self._add(account)
        self.balances.update(staged.balances or {})
        for transfer_id, transfer in (staged.pending or {}).items():
            if transfer is None:
                self.pending.pop(transfer_id, None)
            else:
                self.pending[transfer_id] = transfer
