"""An intent's leverage from the advisor to the inspector (docs/inspector-orders.md, "Leverage, margin
and liquidation"): a strategy's `[intent] leverage` is on each entry it makes, on the wire
(Intent.leverage) and read back by the inspector; a bad one is named."""

from __future__ import annotations

import pytest

from tests.advisor_support import INSTRUMENT, NOW_NS, context, signal
from tests.inspector_support import D
from tests.unit.test_advisor_validation_sizing import UNCAPPED, synthesis
from trademesh.core.advisor.convert import intent_to_pb
from trademesh.core.advisor.engine.config import EntryMode, IntentConfig, SizingConfig
from trademesh.core.advisor.engine.intent import close_intent, open_intent
from trademesh.core.advisor.engine.sizing import risk_size
from trademesh.core.advisor.engine.snapshot import snapshot
from trademesh.core.advisor.engine.validation import validate
from trademesh.core.inspector.convert import intent_from_pb
from trademesh.core.platform.errors import InvalidArgument


def test_a_strategys_leverage_is_on_its_entries_on_the_wire_and_read_back() -> None:
    snap = snapshot(signal(), context(), NOW_NS)
    plan = validate(snap, 1, synthesis(), EntryMode.LIMIT_CROSS, UNCAPPED).plan
    assert plan is not None
    size = risk_size(snap.equity, plan.entry, plan.stop, D(1), INSTRUMENT, SizingConfig(), D(0))
    assert not isinstance(size, str)
    entry = open_intent("dec-1", signal(), 1, plan, size, 0.7, IntentConfig(leverage=D(10)), NOW_NS)
    assert entry.leverage == D(10)
    wire = intent_to_pb(entry, None, None)
    assert wire.leverage == "10" and intent_from_pb(wire).leverage == D(10)
    plain = open_intent("dec-2", signal(), 1, plan, size, 0.7, IntentConfig(), NOW_NS)
    assert (
        intent_to_pb(plain, None, None).leverage == ""
        and intent_from_pb(intent_to_pb(plain, None, None)).leverage is None
    )
    assert close_intent("dec-3", signal(), D(5), IntentConfig(leverage=D(10)), NOW_NS).leverage is None


@pytest.mark.parametrize("bad", ["0", "1001", "-2"])
def test_a_bad_leverage_is_named_in_the_advisor_config_and_on_the_wire(bad: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        IntentConfig(leverage=D(bad))
    assert [v.field for v in caught.value.violations] == ["intent.leverage"]
    snap = snapshot(signal(), context(), NOW_NS)
    plan = validate(snap, 1, synthesis(), EntryMode.LIMIT_CROSS, UNCAPPED).plan
    assert plan is not None
    size = risk_size(snap.equity, plan.entry, plan.stop, D(1), INSTRUMENT, SizingConfig(), D(0))
    assert not isinstance(size, str)
    wire = intent_to_pb(
        open_intent("dec-4", signal(), 1, plan, size, 0.7, IntentConfig(), NOW_NS), None, None
    )
    wire.leverage = bad
    with pytest.raises(InvalidArgument) as refused:
        intent_from_pb(wire)
    assert "intent.leverage" in [v.field for v in refused.value.violations]
