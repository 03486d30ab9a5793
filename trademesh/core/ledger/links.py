"""An order's attribution link: the intent the inspector placed it for, and the decision, signal and
strategy behind that intent (docs/ledger.md). The live ledger reads them from the bus
(trademesh.core.ledger.attribution); a backtest makes them as its replayed inspector places orders.
Pure: no I/O, so a backtest meets it without the shell's Redis and PostgreSQL clients."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["OrderLink"]


@dataclass(frozen=True)
class OrderLink:
    """An order the inspector placed for an intent, and what the intent came from."""

    client_order_id: str
    venue: str
    symbol: str
    intent_id: str
    strategy_id: str
    decision_id: str
    signal_id: str
    risk_event_id: str
    ts_ns: int
