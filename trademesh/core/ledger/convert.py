"""From the wire to the ledger's events, and from its model to the wire (trademesh.ledger.v1)."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation

from trademesh.common.v1 import common_pb2 as common
from trademesh.core.domain.decimals import format_decimal
from trademesh.core.domain.model import Side
from trademesh.core.ledger.contracts import Contract
from trademesh.core.ledger.engine.chart import CODE_NAMES
from trademesh.core.ledger.engine.events import FillEvent, FundingEvent
from trademesh.core.ledger.engine.model import (
    Account,
    AccountFlag,
    LedgerBalance,
    Links,
    Transfer,
    TransferFlag,
)
from trademesh.core.ledger.links import OrderLink
from trademesh.core.platform.errors import InvalidArgument
from trademesh.ledger.v1 import ledger_pb2 as lg
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf

__all__ = ["account_to_pb", "balance_to_pb", "fill_event", "fill_event_id", "funding_event", "transfer_to_pb"]

_SIDES = {common.SIDE_BUY: Side.BUY, common.SIDE_SELL: Side.SELL}
# A normal-credit account's balance is its credits less its debits (docs/ledger.md).
_CREDIT_NORMAL = frozenset({102, 103, 105, 401, 409, 601, 609})


def fill_event_id(venue: str, fill_id: str) -> str:
    return f"fill/{venue}/{fill_id}"


def _decimal(text: str, name: str, default: str | None = None) -> Decimal:
    try:
        value = Decimal(text or default or "")
    except InvalidOperation:
        raise InvalidArgument.field(name, f"{text!r} is not a decimal") from None
    return value


def fill_event(
    venue: str,
    execution: tf.Execution,
    contract: Contract,
    link: OrderLink | None,
    leverage: Decimal = Decimal(1),
) -> FillEvent:
    """The fill of an execution, linked to the intent, decision, signal and strategy its order
    was placed for (none: a fill no strategy asked for), a perpetual's at the `leverage` in force
    at the venue (its margin: docs/ledger.md, "Margin"), a liquidation fill's fee the liquidation
    fee. InvalidArgument when malformed."""
    fill = execution.fill
    side = _SIDES.get(fill.side)
    if side is None:
        raise InvalidArgument.field("fill.side", "is neither buy nor sell")
    event_id = fill_event_id(venue, fill.fill_id)
    links = Links(
        event_id=event_id,
        fill_id=fill.fill_id,
        order_id=fill.order_id,
        client_order_id=fill.client_order_id,
        intent_id=link.intent_id if link else "",
        decision_id=link.decision_id if link else "",
        signal_id=link.signal_id if link else "",
        strategy_id=link.strategy_id if link else "",
    )
    return FillEvent(
        event_id=event_id,
        venue=venue,
        symbol=fill.symbol,
        base=contract.base,
        quote=contract.quote if contract.inverse else contract.settle,
        instrument=contract.kind,
        side=side,
        price=_decimal(fill.price, "fill.price"),
        size=_decimal(fill.size, "fill.size"),
        fee=_decimal(fill.fee, "fill.fee", "0"),
        fee_asset=fill.fee_asset,
        ts_ns=fill.ts_event_ns or execution.ts_event_ns,
        links=links,
        contract_size=contract.contract_size,
        leverage=leverage,
        inverse=contract.inverse,
        liquidation=fill.liquidation,
    )


def funding_event(venue: str, payment: tf.FundingPayment) -> FundingEvent:
    """A venue's funding payment as the ledger posts it ("funding/<venue>/<funding id>"), live
    (trademesh.core.ledger.funding) and in a backtest (trademesh.core.backtest.books); InvalidArgument (a
    TrademeshError) when the payment is malformed."""
    event_id = f"funding/{venue}/{payment.funding_id}"
    try:
        amount = Decimal(payment.amount)
    except InvalidOperation:
        amount = Decimal("NaN")
    return FundingEvent(
        event_id, venue, payment.symbol, payment.asset, amount, payment.ts_ns, Links(event_id)
    )


def account_to_pb(account: Account) -> lg.Account:
    key = account.key
    return lg.Account(
        id=account.id,
        ledger=int(key.ledger),  # type: ignore[arg-type]
        code=key.code,
        code_name=CODE_NAMES.get(key.code, ""),
        venue=key.venue,
        asset=key.asset,
        strategy_id=key.strategy,
        symbol=key.symbol,
        debits_must_not_exceed_credits=bool(account.flags & AccountFlag.DEBITS_MUST_NOT_EXCEED_CREDITS),
        credits_must_not_exceed_debits=bool(account.flags & AccountFlag.CREDITS_MUST_NOT_EXCEED_DEBITS),
    )


def normal_balance(code: int, balance: LedgerBalance) -> Decimal:
    """The posted balance on the account's normal side."""
    net = balance.debits_posted - balance.credits_posted
    return -net if code in _CREDIT_NORMAL else net


def balance_to_pb(account: Account, balance: LedgerBalance) -> lg.Balance:
    return lg.Balance(
        account=account_to_pb(account),
        debits_posted=format_decimal(balance.debits_posted),
        credits_posted=format_decimal(balance.credits_posted),
        debits_pending=format_decimal(balance.debits_pending),
        credits_pending=format_decimal(balance.credits_pending),
        balance=format_decimal(normal_balance(account.key.code, balance)),
    )


def transfer_to_pb(transfer: Transfer, accounts: Mapping[str, Account]) -> lg.Transfer:
    links = transfer.links
    message = lg.Transfer(
        id=transfer.id,
        debit_account_id=transfer.debit_account_id,
        credit_account_id=transfer.credit_account_id,
        amount=format_decimal(transfer.amount),
        ledger=int(transfer.ledger),  # type: ignore[arg-type]
        code=transfer.code,
        asset=transfer.asset,
        ts_ns=transfer.ts_ns,
        pending=bool(transfer.flags & TransferFlag.PENDING),
        post_pending=bool(transfer.flags & TransferFlag.POST_PENDING),
        void_pending=bool(transfer.flags & TransferFlag.VOID_PENDING),
        pending_id=transfer.pending_id,
        links=lg.Links(
            event_id=links.event_id,
            fill_id=links.fill_id,
            order_id=links.order_id,
            client_order_id=links.client_order_id,
            intent_id=links.intent_id,
            decision_id=links.decision_id,
            signal_id=links.signal_id,
            strategy_id=links.strategy_id,
        ),
    )
    for field, account_id in (
        ("debit_account", transfer.debit_account_id),
        ("credit_account", transfer.credit_account_id),
    ):
        account = accounts.get(account_id)
        if account is not None:
            getattr(message, field).CopyFrom(account_to_pb(account))
    return message
