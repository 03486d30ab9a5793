"""The ledger's data model, after TigerBeetle's: accounts with balance-limiting flags,
immutable transfers between two accounts of one ledger and asset, linked chains that apply
all or nothing, and two-phase (pending, then post or void) transfers.

Ids are deterministic (uuid5 of what the account or transfer is for, as 32 hex digits), so
the same events always give the same ids: a redelivered event is recognised by its id, and a
backtest keeps books identical to live.
"""

from __future__ import annotations

import enum
import hashlib
import uuid
from dataclasses import dataclass, field
from decimal import Decimal

from trademesh.core.platform.errors import InvalidArgument

__all__ = [
    "ZERO",
    "Account",
    "AccountFlag",
    "AccountKey",
    "Chain",
    "LedgerBalance",
    "LedgerId",
    "Links",
    "Transfer",
    "TransferFlag",
    "account_id",
    "transfer_id",
]

ZERO = Decimal(0)
_NAMESPACE = uuid.UUID("3b0f6c1e-9d2a-4c57-8e41-6c6564676572")
_NAMESPACE_BYTES = _NAMESPACE.bytes


class LedgerId(enum.IntEnum):
    """The seed's six ledgers. A transfer moves an amount between two accounts of one ledger
    (and one asset); the chart of accounts in docs/ledger.md says which codes each holds."""

    CASH = 1
    POSITION = 2
    FEES = 3
    REALISED_PNL = 4
    MARGIN = 5
    FUNDING_PNL = 6


class AccountFlag(enum.IntFlag):
    NONE = 0
    # Posted and pending debits together never exceed posted credits (e.g. cash never negative).
    DEBITS_MUST_NOT_EXCEED_CREDITS = 1
    # Posted and pending credits together never exceed posted debits.
    CREDITS_MUST_NOT_EXCEED_DEBITS = 2


class TransferFlag(enum.IntFlag):
    NONE = 0
    PENDING = 1  # reserves the amount (debits/credits_pending) until posted or voided
    POST_PENDING = 2  # posts the pending transfer `pending_id` (amount <= the pending amount)
    VOID_PENDING = 4  # releases the pending transfer `pending_id`


@dataclass(frozen=True)
class AccountKey:
    """What an account is for: one per ledger, code, venue, asset and strategy
    (strategy "" for accounts not kept per strategy, e.g. the venue's cash), and symbol for the
    accounts kept per instrument (a position's quantity and cost, its fees, PnL and margin;
    "" for the others)."""

    ledger: LedgerId
    code: int
    venue: str
    asset: str
    strategy: str = ""
    symbol: str = ""

    @property
    def id(self) -> str:
        found: str | None = self.__dict__.get("_id")
        if found is None:  # kept on the instance, not a field: eq, hash and repr ignore it
            found = account_id(self)
            object.__setattr__(self, "_id", found)
        return found


@dataclass(frozen=True)
class Account:
    key: AccountKey
    flags: AccountFlag = AccountFlag.NONE

    @property
    def id(self) -> str:
        return self.key.id


@dataclass(frozen=True)
class Links:
    """A transfer's user data: the ids that trace it back to what caused it."""

    event_id: str  # the event the chain posts (idempotency key): an execution, a funding payment
    fill_id: str = ""
    order_id: str = ""
    client_order_id: str = ""
    intent_id: str = ""
    decision_id: str = ""
    signal_id: str = ""
    strategy_id: str = ""


_RESOLVES = int(TransferFlag.POST_PENDING | TransferFlag.VOID_PENDING)
_DEBITS_LIMITED = int(AccountFlag.DEBITS_MUST_NOT_EXCEED_CREDITS)
_CREDITS_LIMITED = int(AccountFlag.CREDITS_MUST_NOT_EXCEED_DEBITS)


@dataclass(frozen=True)
class Transfer:
    """An immutable movement of `amount` (> 0) from the credit account to the debit account.
    Both accounts share `ledger` and asset. A correction is a new transfer, never an edit."""

    id: str
    debit_account_id: str
    credit_account_id: str
    amount: Decimal
    ledger: LedgerId
    code: int
    asset: str
    ts_ns: int
    links: Links
    flags: TransferFlag = TransferFlag.NONE
    pending_id: str = ""  # POST_PENDING / VOID_PENDING: the pending transfer it resolves

    def __post_init__(self) -> None:
        if self.debit_account_id == self.credit_account_id:
            raise InvalidArgument.field("credit_account_id", f"transfer {self.id}: same as the debit")
        resolves = int(self.flags) & _RESOLVES
        if bool(resolves) != bool(self.pending_id):
            raise InvalidArgument.field("pending_id", f"transfer {self.id}: only with POST/VOID_PENDING")
        if not self.amount.is_finite() or self.amount < 0 or (self.amount == 0 and not resolves):
            raise InvalidArgument.field("amount", f"transfer {self.id}: must be positive, got {self.amount}")


@dataclass(frozen=True)
class Chain:
    """The transfers one event posts, linked: all are kept or none. `accounts` are every
    account the transfers touch (created on first use, with their flags)."""

    event_id: str
    ts_ns: int
    transfers: tuple[Transfer, ...]
    accounts: tuple[Account, ...] = ()


@dataclass
class LedgerBalance:
    """An account's running balance, after TigerBeetle: posted and pending, each side."""

    debits_posted: Decimal = ZERO
    credits_posted: Decimal = ZERO
    debits_pending: Decimal = ZERO
    credits_pending: Decimal = ZERO
    flags: AccountFlag = field(default=AccountFlag.NONE)

    @property
    def net_debit(self) -> Decimal:
        """Posted debits less posted credits: the balance of a debit-normal account."""
        return self.debits_posted - self.credits_posted

    def violation(self) -> str:
        """Why the balance breaks its account's flags, or "" when it does not."""
        flags = int(self.flags)
        if not flags:
            return ""
        debits = self.debits_posted + self.debits_pending
        if flags & _DEBITS_LIMITED and debits > self.credits_posted:
            return "debits would exceed credits"
        credits = self.credits_posted + self.credits_pending
        if flags & _CREDITS_LIMITED and credits > self.debits_posted:
            return "credits would exceed debits"
        return ""


def _uuid5_hex(name: str) -> str:
    """uuid.uuid5(_NAMESPACE, name).hex, without building a UUID (posting makes many)."""
    digest = bytearray(hashlib.sha1(_NAMESPACE_BYTES + name.encode()).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
    return digest.hex()


def account_id(key: AccountKey) -> str:
    name = f"account/{int(key.ledger)}/{key.code}/{key.venue}/{key.asset}/{key.strategy}"
    if key.symbol:  # accounts without a symbol keep the ids they had before it was added
        name += f"/{key.symbol}"
    return _uuid5_hex(name)


def transfer_id(event_id: str, index: int) -> str:
    """The `index`-th transfer of the chain posting `event_id`."""
    return _uuid5_hex(f"transfer/{event_id}/{index}")
