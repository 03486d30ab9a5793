"""What a backtest (trademesh.core.backtest) uses of the inspector, in one module: the inspector's
engine core and the journal driver that moves it (the one way the live shell moves it), its shipped
and default policies, the journal's conversions, a strategy's position request planned, the views
the strategies hear back, and the tick grid.

The backtest imports the inspector only through here (tests/unit/test_backtest_imports.py): what it
reaches of the service, its engine and its shell's modules alike, is named in one place (issue 61)."""

from __future__ import annotations

from trademesh.core.inspector.config import DEFAULT_POLICIES
from trademesh.core.inspector.convert import (
    AMENDED_IN_PLACE,
    amended_away,
    decode_intent,
    order_snapshot,
    place_request,
    refusal_of,
    venue_reason,
)
from trademesh.core.inspector.driver import apply_entry, new_core
from trademesh.core.inspector.engine.actions import (
    Amend,
    CancelAll,
    CancelOrder,
    OrderAction,
    OrderRole,
    PlaceOrder,
    QueryOrder,
    placed_by,
)
from trademesh.core.inspector.engine.core import InspectorCore
from trademesh.core.inspector.engine.events import RiskEvent, RiskOutput, RiskVerdict
from trademesh.core.inspector.engine.ids import entry_order_id
from trademesh.core.inspector.engine.market import MarketView
from trademesh.core.inspector.grid import put_on_grid
from trademesh.core.inspector.requests import plan_request
from trademesh.core.inspector.shipped import journal_policies
from trademesh.core.inspector.views import positions_view, risk_state

__all__ = [
    "AMENDED_IN_PLACE",
    "DEFAULT_POLICIES",
    "Amend",
    "CancelAll",
    "CancelOrder",
    "InspectorCore",
    "MarketView",
    "OrderAction",
    "OrderRole",
    "PlaceOrder",
    "QueryOrder",
    "RiskEvent",
    "RiskOutput",
    "RiskVerdict",
    "amended_away",
    "apply_entry",
    "decode_intent",
    "entry_order_id",
    "journal_policies",
    "new_core",
    "order_snapshot",
    "place_request",
    "placed_by",
    "plan_request",
    "positions_view",
    "put_on_grid",
    "refusal_of",
    "risk_state",
    "venue_reason",
]
