"""Rate limits count intents at their own time (trademesh.core.inspector.engine.rates): a backlog the mesh
held back (an inspector failover) is judged as it would have been on time, a strategy that
decides too fast is throttled however late its intents arrive, and an intent past its expiry is
refused as expired."""

from __future__ import annotations

from dataclasses import replace

from tests.inspector_support import MS, SECOND, T0, core, intent, market
from trademesh.core.inspector.engine.core import InspectorCore
from trademesh.core.inspector.engine.events import RiskAction
from trademesh.core.inspector.engine.policies import PolicySet, RatePolicy
from trademesh.core.inspector.engine.rates import LATE_NS

LIMIT = 4  # orders per strategy per second
FAILOVER_NS = 8 * SECOND  # the backlog's delay: the leader killed, the lease's ttl, the replay


def rated() -> InspectorCore:
    return core(PolicySet(rate=RatePolicy(window_ms=1000, max_per_strategy=LIMIT)))


def actions(c: InspectorCore, made_every_ns: int, count: int, delivered_at: int | None) -> list[RiskAction]:
    """`count` intents made `made_every_ns` apart from T0, each delivered as made, or all at
    `delivered_at` (a backlog): their verdicts."""
    verdicts = []
    for n in range(count):
        made = T0 + n * made_every_ns
        at = made if delivered_at is None else delivered_at + n * MS
        verdicts.append(c.on_intent(intent(at_ns=made, price=None), market(), at).action)
    return verdicts


def test_a_backlog_made_at_a_steady_pace_passes_as_it_would_have_on_time() -> None:
    # Three a second, under the limit of four: on time, every one passes...
    on_time = actions(rated(), SECOND // 3, 24, None)
    assert set(on_time) == {RiskAction.ALLOW}
    # ...and delivered together after a failover too (by arrival time: 20 of 24 throttled).
    late = actions(rated(), SECOND // 3, 24, T0 + FAILOVER_NS)
    assert late == on_time


def test_a_backlog_after_timely_intents_is_counted_with_them() -> None:
    c = rated()
    for n in range(3):  # three timely ones just before the leader died
        assert c.on_intent(intent(at_ns=T0 + n * MS, price=None), market(), T0 + n * MS).allowed
    # Made within the same second, delivered after the failover: the fourth passes, the fifth
    # is one too many in that second, as it would have been on time.
    made = [intent(at_ns=T0 + (3 + n) * MS, price=None) for n in range(2)]
    late = [c.on_intent(each, market(), T0 + FAILOVER_NS) for each in made]
    assert [v.action for v in late] == [RiskAction.ALLOW, RiskAction.THROTTLE]
    assert dict(late[1].reasons[0].values) == {"value": "5", "limit": str(LIMIT)}


def test_a_strategy_deciding_too_fast_is_throttled_however_late_its_intents_arrive() -> None:
    on_time = actions(rated(), 100 * MS, 10, None)  # ten a second
    late = actions(rated(), 100 * MS, 10, T0 + FAILOVER_NS)
    assert late == on_time
    assert on_time.count(RiskAction.THROTTLE) == 10 - LIMIT


def test_an_intent_past_its_expiry_is_refused_as_expired() -> None:
    c = rated()
    stale = intent(at_ns=T0, price=None)
    verdict = c.on_intent(stale, market(), stale.expires_ns + 1)
    assert verdict.action is RiskAction.BLOCK
    assert [e.policy for e in verdict.reasons] == ["intent.expired"]


def test_a_back_dated_or_future_stamp_counts_within_its_bounds() -> None:
    c = rated()
    now = T0 + 2 * LATE_NS
    far_future = now + 3600 * SECOND
    for _ in range(LIMIT):  # stamped far back, and far ahead: counted at now - LATE_NS, and now
        old = intent(at_ns=T0, price=None)
        assert c.on_intent(replace(old, expires_ns=far_future), market(), now).allowed
    # Back-dating does not escape the window: another stamped as old is one too many there.
    fifth = replace(intent(at_ns=T0 + 1, price=None), expires_ns=far_future)
    assert c.on_intent(fifth, market(), now).action is RiskAction.THROTTLE
    ahead = [c.on_intent(intent(at_ns=far_future, price=None), market(), now) for _ in range(LIMIT + 1)]
    assert [v.action for v in ahead] == [RiskAction.ALLOW] * LIMIT + [RiskAction.THROTTLE]
    assert c.rate_counts(now) == {"strategy/trend": LIMIT, "venue/sim": LIMIT}  # the back-dated are older
