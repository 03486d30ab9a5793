"""The Supervisor's engine: the deterministic rules, the checks every proposal passes (whoever
made it), the modes, approvals re-checked against the latest observation, and the audit trail."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest

from trademesh.core.platform.errors import InvalidArgument, NotFound
from trademesh.core.supervisor.engine import (
    ActionKind,
    Bounds,
    Mode,
    Observation,
    PolicyBound,
    Proposal,
    StrategyFigures,
    Supervisor,
    check,
    propose,
)

D = Decimal
T0 = 1_800_000_000_000_000_000
BOUNDS = Bounds(policies={"loss.max_drawdown": PolicyBound(D("0.05"), D("0.01"))})


def figures(name: str, **kw: object) -> StrategyFigures:
    base: dict[str, object] = {
        "strategy": name, "realised_pnl": D("12.5"), "drawdown": D("0.01"), "round_trips": 30,
        "winners": 15, "capital": D("1000"), "paused": False,
    }  # fmt: skip
    return StrategyFigures(**(base | kw))  # type: ignore[arg-type]


def seen(*strategies: StrategyFigures, risk: str = "active", now: int = T0) -> Observation:
    return Observation(now, strategies, {"sim/BTC/USDT": "range"}, risk, {"loss.max_drawdown": D("0.08")})


def kinds(proposals: list[Proposal]) -> list[tuple[str, str, Decimal | None]]:
    return [(p.kind.value, p.policy or p.strategy, p.value) for p in proposals]


# ---- the rules


def test_a_strategy_in_drawdown_past_the_threshold_is_proposed_paused_with_its_evidence() -> None:
    [pause] = propose(seen(figures("trend", drawdown=D("0.12")), figures("mean")), BOUNDS)
    assert (pause.kind, pause.strategy) == (ActionKind.PAUSE, "trend")
    assert pause.reason == "drawdown 12.0% reached the pause threshold 10.0%"
    assert dict(pause.evidence)["drawdown"] == "0.12" and dict(pause.evidence)["hit_rate"] == "0.5"


def test_a_paused_strategy_recovered_is_proposed_resumed_and_only_then() -> None:
    assert kinds(propose(seen(figures("trend", paused=True, drawdown=D("0.05"))), BOUNDS)) == []
    recovered = propose(seen(figures("trend", paused=True, drawdown=D("0.03"))), BOUNDS)
    assert kinds(recovered) == [("resume", "trend", None)]


def test_a_judged_low_hit_rate_cuts_the_capital_by_the_step_never_under_the_minimum() -> None:
    low = figures("trend", winners=6)  # 6 of 30: 20 %
    assert kinds(propose(seen(low), BOUNDS)) == [("set_capital", "trend", D("750.00"))]
    assert kinds(propose(seen(replace(low, capital=D("110"))), BOUNDS)) == [
        ("set_capital", "trend", D("100"))
    ]
    assert propose(seen(replace(low, capital=D("100"))), BOUNDS) == []  # at the minimum already
    assert propose(seen(replace(low, round_trips=10, winners=2)), BOUNDS) == []  # not judged yet
    assert propose(seen(replace(low, capital=None)), BOUNDS) == []  # not capital-checked


def test_most_strategies_hurt_tighten_each_bounded_policy_by_its_step_to_its_floor() -> None:
    hurt = seen(figures("a", drawdown=D("0.2")), figures("b", paused=True, drawdown=D("0.06")), figures("c"))
    assert ("tighten_policy", "loss.max_drawdown", D("0.07")) in kinds(propose(hurt, BOUNDS))
    for calm in (seen(figures("a", drawdown=D("0.2")), figures("c")), seen(figures("a", drawdown=D("0.2")))):
        assert all(p.kind is not ActionKind.TIGHTEN_POLICY for p in propose(calm, BOUNDS))  # half; one alone


def test_nothing_is_proposed_while_the_inspector_stands_down() -> None:
    assert propose(seen(figures("trend", drawdown=D("0.5")), risk="stood_down"), BOUNDS) == []


# ---- the checks (an LLM's proposals as the rules')


@pytest.mark.parametrize(
    ("proposal", "why"),
    [
        (Proposal(ActionKind.PAUSE, "nosuch"), "no strategy 'nosuch' (strategies: trend)"),
        (Proposal(ActionKind.RESUME, "trend"), "trend is not paused"),
        (Proposal(ActionKind.SET_CAPITAL, "trend", D("200000")), "outside [100, 100000]"),
        (Proposal(ActionKind.SET_CAPITAL, "trend", D("1300")), "changes it by more than 0.25 of it"),
        (Proposal(ActionKind.SET_CAPITAL, "trend", D("1000")), "the capital is that already"),
        (Proposal(ActionKind.SET_CAPITAL, "trend"), "set_capital without a value"),
        (Proposal(ActionKind.TIGHTEN_POLICY, policy="loss.max_loss", value=D("1")), "not one the operator"),
        (
            Proposal(ActionKind.TIGHTEN_POLICY, policy="loss.max_drawdown", value=D("0.09")),
            "does not tighten",
        ),
        (
            Proposal(ActionKind.TIGHTEN_POLICY, policy="loss.max_drawdown", value=D("0.04")),
            "beyond its floor",
        ),
        (Proposal(ActionKind.TIGHTEN_POLICY, policy="loss.max_drawdown", value=D("0.065")), "or step 0.01"),
    ],
)
def test_a_proposal_naming_what_does_not_exist_or_leaving_the_bounds_is_refused(
    proposal: Proposal, why: str
) -> None:
    verdict = check(proposal, seen(figures("trend")), BOUNDS)
    assert not verdict.ok and why in verdict.reason, verdict.reason


def test_a_capital_for_a_strategy_not_capital_checked_is_refused() -> None:
    verdict = check(
        Proposal(ActionKind.SET_CAPITAL, "trend", D("800")), seen(figures("trend", capital=None)), BOUNDS
    )
    assert verdict.reason == "trend is not capital-checked: no capital to change"


def test_a_proposal_within_the_bounds_passes() -> None:
    observed = seen(figures("trend"))
    tighter = Proposal(ActionKind.TIGHTEN_POLICY, policy="loss.max_drawdown", value=D("0.075"))
    for ok in (
        Proposal(ActionKind.PAUSE, "trend"),
        Proposal(ActionKind.SET_CAPITAL, "trend", D("800")),
        tighter,
    ):
        assert check(ok, observed, BOUNDS).ok, ok


# ---- the modes, approvals and the audit trail


def test_in_propose_mode_a_proposal_waits_once_and_an_approval_makes_it_an_action() -> None:
    s = Supervisor(BOUNDS, Mode.PROPOSE, book="b1-")
    bad = seen(figures("trend", drawdown=D("0.12")))
    first = s.observe(bad)
    assert [(i, p.kind) for i, p in first.opened] == [("b1-p1", ActionKind.PAUSE)] and first.actions == []
    assert s.observe(replace(bad, now_ns=T0 + 60)).opened == []  # waiting already: not again
    approved = s.approve("b1-p1", "alice", T0 + 120, "drawdown seen, agreed")
    assert [(i, p.strategy) for i, p in approved.actions] == [("b1-p1", "trend")]
    assert [(a.kind, a.who) for a in approved.audit] == [("approved", "alice"), ("action", "alice")]
    assert approved.audit[0].detail == "pause trend: drawdown seen, agreed"  # the operator's reason kept
    with pytest.raises(NotFound):
        s.approve("b1-p1", "alice", T0 + 130)


def test_an_approval_is_checked_again_against_the_latest_observation() -> None:
    s = Supervisor(BOUNDS, Mode.PROPOSE)
    [(proposal_id, _)] = s.observe(seen(figures("trend", drawdown=D("0.12")))).opened
    s.observe(
        seen(figures("trend", drawdown=D("0.12"), paused=True), now=T0 + 60)
    )  # paused by hand meanwhile
    late = s.approve(proposal_id, "alice", T0 + 120)
    assert late.actions == [] and "paused already" in late.refused[0][1]
    assert late.audit[0].kind == "refused"


def test_in_act_mode_a_checked_proposal_is_an_action_and_a_refused_one_is_recorded() -> None:
    s = Supervisor(BOUNDS, Mode.ACT)
    llm = Proposal(ActionKind.PAUSE, "ghost", reason="it looks bad", source="primary")
    out = s.observe(seen(figures("trend", drawdown=D("0.12"))), suggested=(llm,))
    assert [p.strategy for _, p in out.actions] == ["trend"] and s.open == {}
    assert [(p.strategy, why.split(" (")[0]) for p, why in out.refused] == [("ghost", "no strategy 'ghost'")]
    assert [a.kind for a in out.audit] == ["observation", "proposal", "action", "refused"]
    assert out.audit[-1].who == "primary"


def test_off_proposes_nothing_and_leaving_propose_drops_what_waits() -> None:
    off = Supervisor(BOUNDS, Mode.OFF).observe(seen(figures("trend", drawdown=D("0.5"))))
    assert (off.opened, off.actions, [a.kind for a in off.audit]) == ([], [], ["observation"])
    s = Supervisor(BOUNDS, Mode.PROPOSE)
    s.observe(seen(figures("trend", drawdown=D("0.5"))))
    changed = s.set_mode(Mode.OFF, "alice", T0 + 1)
    assert s.open == {} and [a.kind for a in changed.audit] == ["mode", "rejected"]


def test_the_same_observations_give_the_same_trail() -> None:
    def trail() -> list[object]:
        s = Supervisor(BOUNDS, Mode.ACT, book="x")
        return [
            s.observe(seen(figures("t", drawdown=D(d)), now=T0 + n)).audit
            for n, d in enumerate(("0.2", "0.01"))
        ]

    assert trail() == trail()


# ---- the operator's bounds, from TOML


def test_bounds_read_from_toml_and_bad_ones_name_their_path() -> None:
    text = (
        '[supervisor]\npause_drawdown = "0.2"\n'
        '[supervisor.policies."loss.max_drawdown"]\nfloor = "0.05"\nstep = "0.01"\n'
    )
    read = Bounds.from_toml(text)
    assert read.pause_drawdown == D("0.2") and read.policies["loss.max_drawdown"].step == D("0.01")
    for bad, field in [
        ('[supervisor]\nmin_hit_rate = "lots"', "supervisor.min_hit_rate"),
        ("[supervisor]\nmin_hit_rate = 0.3", "supervisor.min_hit_rate"),
        ('[supervisor]\npause_dd = "0.1"', "supervisor.pause_dd"),
        ('[supervisor]\nresume_drawdown = "0.5"', "supervisor.resume_drawdown"),
        ('[supervisor.policies."x"]\nfloor = "1"', 'supervisor.policies."x"'),
        ("[supervisor]\nmin_round_trips = true", "supervisor.min_round_trips"),
        ("not toml [", "supervisor"),
    ]:
        with pytest.raises(InvalidArgument) as caught:
            Bounds.from_toml(bad)
        assert caught.value.violations[0].field == field, (bad, caught.value)
