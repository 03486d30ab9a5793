"""The trace: from any id in the trading chain (a ledger transfer, a fill, an order or client
order id, an intent, a decision, a signal) to the whole chain it belongs to, signal first:

    signal -> decision -> intent -> risk check -> order -> fill -> transfer

Read from PostgreSQL: the recorder's tables (signals, decisions, intents, executions) and the
ledger's (ledger_orders: the inspector's ALLOW for each order; ledger_transfers). The id is
first resolved to the chain's root (its signal when it has one, else its intent or its order),
then the chain is walked forward from the root. A table not there yet (the recorder never ran)
is a step not shown, not an error.

The Supervisor's proposals trace too (docs/supervisor.md): a proposal id, or the id of one of its
audit entries, gives the proposal's audit trail (the recorder's `supervisor_audit`), oldest
first: proposed (or refused), approved or rejected and by whom, carried out and its outcome.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from trademesh.core.platform.errors import InvalidArgument, NotFound
from trademesh.core.platform.text import unstorable

__all__ = ["Step", "Trace", "trace"]

_MAX_ID = 200
# The key fields each step shows.
_SIGNAL = ("strategy_id", "venue", "symbol", "direction", "conviction", "score", "threshold")
_DECISION = ("outcome", "blocked_stage", "conviction_raw", "conviction_calibrated", "regime", "synthesis")
_INTENT = (
    "strategy_id",
    "venue",
    "symbol",
    "side",
    "size",
    "entry_type",
    "entry_price",
    "stop_loss",
    "take_profit",
)
_RISK = ("intent_id", "strategy_id", "venue", "symbol", "client_order_id")
_ORDER = (
    "venue",
    "symbol",
    "side",
    "order_type",
    "price",
    "size",
    "filled_size",
    "average_fill_price",
    "status",
)
_FILL = ("venue", "order_id", "fill_price", "fill_size", "fee", "fee_asset", "liquidity")
_TRANSFER = (
    "ledger",
    "code",
    "asset",
    "amount",
    "debit_account_id",
    "credit_account_id",
    "fill_id",
    "strategy_id",
)


# The client order id prefix of a venue's own liquidation order (tradeflow.v1.Order.liquidation).
_LIQUIDATION_PREFIX = "liq-"


@dataclass(frozen=True)
class Step:
    kind: str  # signal, decision, intent, risk_check, order, fill, transfer; a proposal's audit kinds
    id: str
    ts_ns: int
    summary: str
    fields: tuple[tuple[str, str], ...] = ()


@dataclass
class Trace:
    id: str
    kind: str
    steps: list[Step] = field(default_factory=list)


@dataclass
class _Root:
    signal_id: str = ""
    intent_ids: set[str] = field(default_factory=set)
    client_order_ids: set[str] = field(default_factory=set)
    order_ids: set[tuple[str, str]] = field(default_factory=set)  # (venue, order id)


async def trace(pool: Any, wanted: str) -> Trace:
    """The chain `wanted` belongs to; NotFound when no table knows the id."""
    wanted = wanted.strip()
    if not wanted or len(wanted) > _MAX_ID:
        raise InvalidArgument.field("id", f"must be 1-{_MAX_ID} characters")
    why = unstorable(wanted)  # no table holds such an id (and asyncpg cannot send a surrogate)
    if why is not None:
        raise InvalidArgument.field("id", why)
    async with pool.acquire() as connection:
        db = _Db(connection)
        audit = await _proposal_steps(db, wanted)
        if audit:
            return Trace(wanted, "proposal", audit)
        kind, root = await _resolve(db, wanted)
        result = Trace(wanted, kind)
        result.steps = await _walk(db, root)
    return result


class _Db:
    """Queries that treat a missing table as no rows."""

    def __init__(self, connection: Any) -> None:
        self.connection = connection

    async def rows(self, query: str, *args: object) -> Sequence[Any]:
        try:
            async with self.connection.transaction():
                result: Sequence[Any] = await self.connection.fetch(query, *args)
                return result
        except asyncpg.UndefinedTableError:
            return []

    async def row(self, query: str, *args: object) -> Any:
        found = await self.rows(query, *args)
        return found[0] if found else None


# ---------------------------------------------------------------- resolve


async def _resolve(db: _Db, wanted: str) -> tuple[str, _Root]:
    for kind, finder in _FINDERS:
        root = await finder(db, wanted)
        if root is not None:
            return kind, root
    raise NotFound(
        f"no signal, decision, intent, order, fill, transfer or Supervisor proposal has the id {wanted!r}"
    )


_PROPOSAL_OF = "SELECT proposal_id FROM supervisor_audit WHERE id = $1 AND proposal_id <> '' LIMIT 1"
_AUDIT_OF = (
    "SELECT id, ts_ns, kind, proposal_id, detail, who FROM supervisor_audit "
    f"WHERE proposal_id = coalesce(({_PROPOSAL_OF}), $1) AND proposal_id <> '' ORDER BY ts_ns, id"
)


async def _proposal_steps(db: _Db, wanted: str) -> list[Step]:
    """The audit entries of the proposal `wanted` names (its id, or one of its entries' ids)."""
    steps = []
    for row in await db.rows(_AUDIT_OF, wanted):
        summary = f"{row['kind']} by {row['who'] or 'supervisor'}: {row['detail'][:200]}"
        fields = (("proposal_id", row["proposal_id"]), ("who", row["who"]))
        steps.append(Step(row["kind"], row["id"], row["ts_ns"], summary, fields))
    return steps


async def _from_transfer(db: _Db, wanted: str) -> _Root | None:
    row = await db.row(
        "SELECT signal_id, intent_id, client_order_id FROM ledger_transfers WHERE id = $1 OR event_id = $1 "
        "LIMIT 1",
        wanted,
    )
    return (
        None
        if row is None
        else await _from_links(db, row["signal_id"], row["intent_id"], row["client_order_id"])
    )


async def _from_signal(db: _Db, wanted: str) -> _Root | None:
    row = await db.row("SELECT signal_id FROM signals WHERE signal_id = $1 LIMIT 1", wanted)
    return None if row is None else _Root(signal_id=wanted)


async def _from_decision(db: _Db, wanted: str) -> _Root | None:
    row = await db.row("SELECT signal_id FROM decisions WHERE decision_id = $1 LIMIT 1", wanted)
    return None if row is None else _Root(signal_id=row["signal_id"])


async def _from_intent(db: _Db, wanted: str) -> _Root | None:
    row = await db.row("SELECT signal_id FROM intents WHERE intent_id = $1 LIMIT 1", wanted)
    if row is not None:
        return _Root(signal_id=row["signal_id"])
    link = await db.row("SELECT signal_id FROM ledger_orders WHERE intent_id = $1 LIMIT 1", wanted)
    return None if link is None else await _from_links(db, link["signal_id"], wanted, "")


async def _from_order(db: _Db, wanted: str) -> _Root | None:
    row = await db.row(
        "SELECT client_order_id FROM executions WHERE order_id = $1 OR client_order_id = $1 LIMIT 1", wanted
    )
    client = row["client_order_id"] if row is not None else ""
    link = await db.row(
        "SELECT client_order_id FROM ledger_orders WHERE client_order_id = $1", client or wanted
    )
    if row is None and link is None:
        return None
    return await _from_links(db, "", "", client or wanted)


async def _from_fill(db: _Db, wanted: str) -> _Root | None:
    row = await db.row("SELECT client_order_id FROM executions WHERE fill_id = $1 LIMIT 1", wanted)
    if row is None:
        row = await db.row("SELECT client_order_id FROM ledger_events WHERE fill_id = $1 LIMIT 1", wanted)
    return None if row is None else await _from_links(db, "", "", row["client_order_id"])


async def _from_links(db: _Db, signal_id: str, intent_id: str, client_order_id: str) -> _Root:
    """The root of a chain known by some of its ids: its signal when one is known."""
    if not intent_id and client_order_id:
        link = await db.row(
            "SELECT intent_id, signal_id FROM ledger_orders WHERE client_order_id = $1", client_order_id
        )
        if link is not None:
            intent_id, signal_id = link["intent_id"], signal_id or link["signal_id"]
    if not signal_id and intent_id:
        row = await db.row("SELECT signal_id FROM intents WHERE intent_id = $1 LIMIT 1", intent_id)
        signal_id = row["signal_id"] if row is not None else ""
    if signal_id:
        return _Root(signal_id=signal_id)
    root = _Root()
    if intent_id:
        root.intent_ids.add(intent_id)
    if client_order_id:
        root.client_order_ids.add(client_order_id)
    return root


_FINDERS = (
    ("transfer", _from_transfer),
    ("signal", _from_signal),
    ("decision", _from_decision),
    ("intent", _from_intent),
    ("fill", _from_fill),
    ("order", _from_order),
)

# ---------------------------------------------------------------- walk forward


async def _walk(db: _Db, root: _Root) -> list[Step]:
    steps: list[Step] = []
    if root.signal_id:
        steps += await _signal_steps(db, root)
    steps += await _intent_steps(db, root)
    steps += await _risk_steps(db, root)
    steps += await _order_steps(db, root)
    steps += await _transfer_steps(db, root)
    return steps


async def _signal_steps(db: _Db, root: _Root) -> list[Step]:
    steps: list[Step] = []
    signal = await db.row("SELECT * FROM signals WHERE signal_id = $1 LIMIT 1", root.signal_id)
    if signal is not None:
        summary = f"{signal['direction']} {signal['symbol']} on {signal['venue']} ({signal['conviction']})"
        steps.append(
            Step("signal", root.signal_id, signal["ts_signal_ns"], summary, _fields(signal, _SIGNAL))
        )
    for decision in await db.rows(
        "SELECT * FROM decisions WHERE signal_id = $1 ORDER BY ts_decision_ns", root.signal_id
    ):
        outcome = decision["outcome"]
        summary = (
            outcome
            if outcome == "intent"
            else f"blocked at {decision['blocked_stage']}: {decision['block_reason']}"
        )
        at = decision["ts_decision_ns"]
        steps.append(Step("decision", decision["decision_id"], at, summary, _fields(decision, _DECISION)))
    for intent in await db.rows("SELECT intent_id FROM intents WHERE signal_id = $1", root.signal_id):
        root.intent_ids.add(intent["intent_id"])
    for link in await db.rows("SELECT intent_id FROM ledger_orders WHERE signal_id = $1", root.signal_id):
        root.intent_ids.add(link["intent_id"])
    return steps


async def _intent_steps(db: _Db, root: _Root) -> list[Step]:
    steps: list[Step] = []
    for intent_id in sorted(root.intent_ids):
        intent = await db.row("SELECT * FROM intents WHERE intent_id = $1 LIMIT 1", intent_id)
        if intent is None:
            continue
        price = intent["entry_price"]
        summary = f"{intent['side']} {intent['size']} {intent['symbol']} {intent['entry_type']}" + (
            f" @ {price}" if price is not None else ""
        )
        steps.append(Step("intent", intent_id, intent["ts_intent_ns"], summary, _fields(intent, _INTENT)))
    return steps


async def _risk_steps(db: _Db, root: _Root) -> list[Step]:
    steps: list[Step] = []
    links = await db.rows(
        "SELECT * FROM ledger_orders WHERE intent_id = ANY($1::text[]) OR client_order_id = ANY($2::text[]) "
        "ORDER BY ts_ns",
        sorted(root.intent_ids),
        sorted(root.client_order_ids),
    )
    for link in links:
        root.client_order_ids.add(link["client_order_id"])
        summary = f"allowed: order {link['client_order_id']} on {link['venue']}"
        if not link["strategy_id"]:  # a protective order, linked to its position's latest entry
            summary = f"protects the intent's position: order {link['client_order_id']} on {link['venue']}"
        steps.append(Step("risk_check", link["risk_event_id"], link["ts_ns"], summary, _fields(link, _RISK)))
    return steps


async def _order_steps(db: _Db, root: _Root) -> list[Step]:
    rows = await db.rows(
        "SELECT * FROM executions WHERE client_order_id = ANY($1::text[]) ORDER BY ts_event_ns, sequence",
        sorted(root.client_order_ids),
    )
    orders: dict[str, Any] = {}
    steps: list[Step] = []
    for row in rows:
        orders.setdefault(row["client_order_id"], row)
        orders[row["client_order_id"]] = _latest(orders[row["client_order_id"]], row)
    for client, row in orders.items():
        price = f" @ {row['price']}" if row["price"] is not None else ""
        summary = f"{row['side']} {row['size']} {row['symbol']} {row['order_type']}{price}: {row['status']}"
        fields = (("client_order_id", client), *_fields(row, _ORDER), *_liquidation(row))
        steps.append(Step("order", row["order_id"], row["created_ns"], summary, fields))
    seen: set[str] = set()
    for row in rows:
        if row["fill_id"] is None or row["fill_id"] in seen:
            continue
        seen.add(row["fill_id"])
        summary = f"{row['side']} {row['fill_size']} {row['symbol']} @ {row['fill_price']}"
        at = row["fill_ts_ns"] or row["ts_event_ns"]
        fields = (*_fields(row, _FILL), *_liquidation(row))
        steps.append(Step("fill", row["fill_id"], at, summary, fields))
    return steps


def _liquidation(row: Any) -> tuple[tuple[str, str], ...]:
    """("liquidation", "true") for the venue's liquidation order and its fills: its recorded
    flag where the recorder keeps one, else its client order id, the venue's "liq-..."
    (tradeflow.v1.Order.liquidation); nothing for any other."""
    flagged = row.get("liquidation")  # None: not recorded (or no such column)
    if flagged is None:
        flagged = str(row["client_order_id"] or "").startswith(_LIQUIDATION_PREFIX)
    return (("liquidation", "true"),) if flagged else ()


def _latest(first: Any, row: Any) -> Any:
    """An order's newest update, keeping its first appearance's creation time."""
    return row if row["updated_ns"] >= first["updated_ns"] else first


async def _transfer_steps(db: _Db, root: _Root) -> list[Step]:
    rows = await db.rows(
        "SELECT * FROM ledger_transfers WHERE event_id IN "
        "(SELECT event_id FROM ledger_events WHERE client_order_id = ANY($1::text[])) ORDER BY ts_ns, id",
        sorted(root.client_order_ids),
    )
    return [
        Step("transfer", row["id"], row["ts_ns"], _transfer_summary(row), _fields(row, _TRANSFER))
        for row in rows
    ]


def _transfer_summary(row: Any) -> str:
    return f"{row['amount']} {row['asset']} on ledger {row['ledger']} (code {row['code']})"


def _fields(row: Any, names: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    return tuple((name, "" if row[name] is None else str(row[name])) for name in names)
