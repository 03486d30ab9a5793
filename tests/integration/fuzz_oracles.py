"""What an answer must not be beyond its status: work a service took on that it should have
refused. A fuzzed request answered OK is looked at again when it asked for work (an intent
allowed, a signal decided, a patch activated or edited while active): the work must make sense
for the mesh as it is (a venue it serves, a symbol that venue lists) and for its own meaning
(docs/inspector.md, "The check": levels on their sides of the entry, a known time in force,
conviction within 0-1, a risk amount of 0 or more).

Each oracle takes the request and the answer, serialised, and says what was wrong (empty: nothing).
A request that does not parse with the generated classes (a lone surrogate) was refused anyway.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from decimal import Decimal, InvalidOperation
from typing import TypeVar

from google.protobuf.message import DecodeError

from trademesh.advisor.v1 import messages_pb2 as am
from trademesh.advisor.v1 import service_pb2 as adv
from trademesh.common.v1 import common_pb2 as common
from trademesh.patch.v1 import patch_pb2 as pp
from trademesh.risk.v1 import inspector_pb2 as rk
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf

__all__ = ["Oracle", "intent_problems", "oracles"]

Oracle = Callable[[bytes, bytes], list[str]]
M = TypeVar("M", rk.SubmitIntentRequest, adv.DecideRequest)


def oracles(venues: Collection[str], symbols: Collection[str]) -> dict[str, Oracle]:
    """The oracles by method path, for a mesh serving `venues`, whose venue lists `symbols`."""

    def submitted(request: bytes, reply: bytes) -> list[str]:
        answer = rk.SubmitIntentResponse.FromString(reply)
        if answer.action != rk.RISK_ACTION_ALLOW:
            return []
        intent = _parsed(rk.SubmitIntentRequest, request)
        return [] if intent is None else intent_problems(intent.intent, venues, symbols)

    def decided(request: bytes, reply: bytes) -> list[str]:
        asked = _parsed(adv.DecideRequest, request)
        if asked is None:
            return []
        found = []
        if asked.HasField("signal") and asked.signal.venue not in venues:
            found.append(f"decided a signal of venue {asked.signal.venue!r}, which nobody serves")
        decision = adv.DecideResponse.FromString(reply).decision
        if decision.outcome == am.OUTCOME_INTENT:
            found += [f"its intent: {p}" for p in intent_problems(decision.intent, venues, symbols)]
        return found

    def active_on(answer: type[pp.ActivatePatchResponse] | type[pp.UpdatePatchResponse]) -> Oracle:
        # The advisor and the inspector follow the markets of every active patch: an edit that
        # leaves one active on a venue nobody serves, or on a symbol it does not list, is one.
        def check(request: bytes, reply: bytes) -> list[str]:
            patch = answer.FromString(reply).patch
            if patch.state != pp.PATCH_STATE_ACTIVE:
                return []
            return [
                f"left {patch.patch_id!r} active on {m.venue!r} {m.symbol!r}: "
                + (f"{m.venue} does not list it" if m.venue in venues else "nobody serves that venue")
                for m in patch.markets
                if m.venue not in venues or m.symbol not in symbols
            ]

        return check

    return {
        "/trademesh.risk.v1.Inspector/SubmitIntent": submitted,
        "/trademesh.advisor.v1.Advisor/Decide": decided,
        "/trademesh.patch.v1.Patch/ActivatePatch": active_on(pp.ActivatePatchResponse),
        "/trademesh.patch.v1.Patch/UpdatePatch": active_on(pp.UpdatePatchResponse),
    }


def intent_problems(intent: am.Intent, venues: Collection[str], symbols: Collection[str]) -> list[str]:
    """What is wrong with an intent that was taken (empty: nothing)."""
    found = []
    if intent.venue not in venues:
        found.append(f"venue {intent.venue!r}, which nobody serves")
    elif intent.symbol not in symbols:
        found.append(f"symbol {intent.symbol!r}, which {intent.venue} does not list")
    conviction = _decimal(intent.conviction)
    if intent.conviction and (conviction is None or not 0 <= conviction <= 1):
        found.append(f"conviction {intent.conviction!r}, not within 0-1")
    risk = _decimal(intent.risk_amount)
    if intent.risk_amount and (risk is None or risk < 0):
        found.append(f"risk_amount {intent.risk_amount!r}, not 0 or more")
    if intent.time_in_force not in tf.TimeInForce.values():
        found.append(f"time_in_force {intent.time_in_force}, no known value")
    return found + _levels(intent)


def _levels(intent: am.Intent) -> list[str]:
    """A stop-loss on the losing side of the entry and a take-profit on the winning side (against
    each other when the entry has no price: a market intent not sized at a reference)."""
    sign = {common.SIDE_BUY: 1, common.SIDE_SELL: -1}.get(intent.side)
    entry, stop, target = (_decimal(v) for v in (intent.entry_price, intent.stop_loss, intent.take_profit))
    if sign is None:
        return []
    found = []
    if entry is not None and stop is not None and sign * (entry - stop) <= 0:
        found.append(f"stop_loss {intent.stop_loss} on the wrong side of the entry {intent.entry_price}")
    if entry is not None and target is not None and sign * (target - entry) <= 0:
        found.append(f"take_profit {intent.take_profit} on the wrong side of the entry {intent.entry_price}")
    if entry is None and stop is not None and target is not None and sign * (target - stop) <= 0:
        found.append(f"stop_loss {intent.stop_loss} and take_profit {intent.take_profit} the wrong way round")
    return found


def _decimal(text: str) -> Decimal | None:
    """The finite number `text` is (None: empty, not a number, NaN or infinite)."""
    try:
        value = Decimal(text)
    except (InvalidOperation, ValueError):
        return None
    return value if value.is_finite() else None


def _parsed(cls: type[M], body: bytes) -> M | None:
    try:
        return cls.FromString(body)
    except DecodeError:
        return None
