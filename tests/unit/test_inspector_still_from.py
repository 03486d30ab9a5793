"""InspectorCore.still_from_ns: from when the risk state stays as it is until the next input (a
backtest builds it again only after an input, or while it moves with time: issue 62). Read at or
after that time, the state (views.risk_state, its time stamp aside) is the same at any later
time; read before it, the cooldown and the rate counts still move."""

from __future__ import annotations

from tests.inspector_support import MS, SECOND, T0, core, fill, intent, market
from trademesh.core.domain.model import Side
from trademesh.core.inspector.engine.core import InspectorCore
from trademesh.core.inspector.engine.policies import LossPolicy, PolicySet, RatePolicy
from trademesh.core.inspector.views import risk_state
from trademesh.risk.v1 import inspector_pb2 as rk

COOLDOWN_MS = 60_000
WINDOW_MS = 90_000


def _read(c: InspectorCore, now_ns: int) -> rk.GetRiskStateResponse:
    state = risk_state(c, now_ns, {})
    state.ts_ns = 0
    return state


def _losing_trade(c: InspectorCore, at_ns: int) -> None:
    entry = c.on_intent(intent(at_ns=at_ns), market(), at_ns).orders[0]
    c.on_fill("sim", fill(entry, price="100"), at_ns)
    exit_ = c.on_intent(intent(Side.SELL, price="99", reduce_only=True, at_ns=at_ns), market("99"), at_ns)
    c.on_fill("sim", fill(exit_.orders[0], price="99"), at_ns)


def _core(cooldown_ms: int, window_ms: int) -> InspectorCore:
    return core(
        PolicySet(loss=LossPolicy(cooldown_after_loss_ms=cooldown_ms), rate=RatePolicy(window_ms=window_ms))
    )


def test_a_fresh_core_stands_still_from_the_start() -> None:
    c = _core(COOLDOWN_MS, WINDOW_MS)
    assert c.still_from_ns == 0
    assert _read(c, T0) == _read(c, T0 + 3_600 * SECOND)


def test_the_state_stands_still_once_the_cooldown_ran_out_and_the_rate_window_emptied() -> None:
    for cooldown_ms, window_ms in ((COOLDOWN_MS, WINDOW_MS), (WINDOW_MS, COOLDOWN_MS), (0, WINDOW_MS)):
        c = _core(cooldown_ms, window_ms)
        _losing_trade(c, T0)
        still = c.still_from_ns
        assert still == T0 + max(cooldown_ms, window_ms) * MS
        before = _read(c, still - 1)
        assert before != _read(c, still)  # it moved until then
        assert before.cooldown_until_ns or any(rate.orders for rate in before.rates)
        for later in (still, still + 1, still + SECOND, still + 86_400 * SECOND):
            assert _read(c, later) == _read(c, still)
