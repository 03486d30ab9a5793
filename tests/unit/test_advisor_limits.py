"""Stage 8 sizes within the inspector's limits (issue 57 item 4; docs/advisor.md, "Within the
inspector's limits"): the limits are the core's input (`on_limits`); an intent is cut to what
`orders.max_notional` and `position.max_notional` leave, and nothing left blocks the decision
naming the policy, so the advisor stops proposing what the inspector would block."""

from __future__ import annotations

import dataclasses
import tomllib
from decimal import Decimal
from pathlib import Path
from typing import Any

from tests.advisor_support import NOW_NS, context, signal
from trademesh.core.advisor.engine.calibration import Calibration
from trademesh.core.advisor.engine.config import (
    AdvisorConfig,
    SizingConfig,
    SynthesisConfig,
    ValidationConfig,
)
from trademesh.core.advisor.engine.context import OpenOrder
from trademesh.core.advisor.engine.core import AdvisorCore
from trademesh.core.advisor.engine.decision import Decision, Outcome, Pending
from trademesh.core.advisor.engine.limits import HEADROOM, RiskLimits, limits_from_status
from trademesh.core.advisor.engine.telemetry import TelemetryKind
from trademesh.core.domain.model import Balance, Position, Side

D = Decimal
POLICIES = Path(__file__).parents[2] / "trademesh" / "core" / "inspector" / "default_policies.toml"
# The demo's advisor: 0.8 % of its 1,000,000 USDT an intent (trademesh.core.advisor.config's mesh share).
DEMO = AdvisorConfig(
    validation=ValidationConfig(cap_target_at_swing=False),
    synthesis=SynthesisConfig(llm_enabled=False),
    sizing=SizingConfig(max_notional_share=D("0.008")),
)
RICH = (Balance("USDT", D("1000000")),)


def demo_limits() -> RiskLimits:
    """The inspector's shipped policies (the demo's), as GetPolicies' status states them."""
    policies = tomllib.loads(POLICIES.read_text())
    status = {
        "orders.max_notional": policies["orders"]["max_notional"],
        "position.max_notional": policies["position"]["max_notional"],
    }
    return limits_from_status(status)


def decide(core: AdvisorCore, position: Decimal, **changes: Any) -> Decision:
    positions = () if position == 0 else (Position("BTC/USDT", position, D("102.01")),)
    result = core.on_signal(signal(), context(balances=RICH, positions=positions, **changes), NOW_NS)
    assert isinstance(result, Decision) and not isinstance(result, Pending)
    return result


def test_the_demos_intents_stop_at_the_position_limit_and_then_stop_coming() -> None:
    limits = demo_limits()
    assert limits == RiskLimits(D("10000"), D("20000"))
    core = AdvisorCore(DEMO, None, Calibration.identity())
    core.on_limits(limits)
    position, sizes = D(0), []
    for _ in range(5):  # each intent fills whole; the signals keep coming
        d = decide(core, position)
        if d.intent is None or d.intent.entry_price is None:
            break
        assert (position + d.intent.size) * d.intent.entry_price <= D("20000")
        position += d.intent.size
        sizes.append(d.intent.size)
    # 8,000 USDT twice (78.423 at 102.01), then what 19,800 leaves: 37.252; then nothing.
    assert sizes == [D("78.423"), D("78.423"), D("37.252")]
    assert d.outcome is Outcome.BLOCKED and d.intent is None
    assert d.reasons == (
        "the inspector's position.max_notional 20000 leaves no room with 19799.93698 held or working",
    )
    core.take_telemetry()
    # Without the limits (none read yet) the same position gets a whole 8,000 USDT intent.
    unlimited = AdvisorCore(DEMO, None, Calibration.identity())
    again = decide(unlimited, position)
    assert again.intent is not None and again.intent.size == D("78.423")


def test_a_cut_is_said_in_telemetry_with_the_policy_and_the_sizes() -> None:
    core = AdvisorCore(DEMO, None, Calibration.identity())
    core.on_limits(RiskLimits(max_position_notional=D("20000")))
    d = decide(core, D("150"))
    assert d.intent is not None and d.sizing is not None and d.sizing.limited_by == "position.max_notional"
    sized = [e for e in core.take_telemetry() if e.kind is TelemetryKind.POSITION_SIZED]
    assert [dict(e.fields) for e in sized] == [
        {"policy": "position.max_notional", "limit": "20000", "held_notional": "15301.5",
         "wanted": "78.423", "size": str(d.intent.size)},
    ]  # fmt: skip
    room = D("20000") * (1 - HEADROOM) - D("15301.5")
    assert d.intent.size == (room / D("102.01")).quantize(D("0.001"), rounding="ROUND_DOWN")


def test_the_order_limit_cuts_one_intent_and_open_entries_count_toward_the_position() -> None:
    whole = dataclasses.replace(DEMO, sizing=SizingConfig(max_notional_share=D("0.05")))  # 50,000 USDT
    core = AdvisorCore(whole, None, Calibration.identity())
    core.on_limits(RiskLimits(D("10000"), D("20000")))
    d = decide(core, D(0))
    assert d.intent is not None and d.sizing is not None and d.sizing.limited_by == "orders.max_notional"
    assert d.intent.size == D("97.049")  # 9,900 / 102.01
    working = (OpenOrder("o-1", Side.BUY, D("100"), D("150")),)  # a working entry of 15,301.5
    d = decide(core, D(0), open_orders=working)
    assert d.intent is not None and d.sizing is not None and d.sizing.limited_by == "position.max_notional"
    assert d.intent.size == D("44.098")  # (19,800 - 15,301.5) / 102.01
    # A short's protective sell does not count toward a long's room.
    other_side = (OpenOrder("o-2", Side.SELL, D("110"), D("150")),)
    d = decide(core, D(0), open_orders=other_side)
    assert d.intent is not None and d.intent.size == D("97.049")
