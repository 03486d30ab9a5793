"""What a backtest (trademesh.core.backtest) uses of the ledger, in one module: the ledger's engine
core (its events, postings and reports), an order's attribution link, a venue's contract terms, and
the conversions of a venue's fill and funding payment.

The backtest imports the ledger only through here (tests/unit/test_backtest_imports.py): what it
reaches of the service, its engine and its shell's modules alike, is named in one place (issue 61)."""

from __future__ import annotations

from trademesh.core.ledger.contracts import Contract
from trademesh.core.ledger.convert import fill_event, funding_event
from trademesh.core.ledger.engine.core import LedgerCore
from trademesh.core.ledger.engine.events import UNATTRIBUTED, DepositEvent, Event
from trademesh.core.ledger.engine.reports import PnlLine, PositionView, pnl, positions, strategy_label
from trademesh.core.ledger.links import OrderLink

__all__ = [
    "UNATTRIBUTED",
    "Contract",
    "DepositEvent",
    "Event",
    "LedgerCore",
    "OrderLink",
    "PnlLine",
    "PositionView",
    "fill_event",
    "funding_event",
    "pnl",
    "positions",
    "strategy_label",
]
