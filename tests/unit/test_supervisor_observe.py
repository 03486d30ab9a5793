"""The Supervisor's observation from its tools' answers (trademesh.core.supervisor.observe), shaped as the
gateway's MCP tools answer (list_strategies, ledger_pnl, inspector_state, inspector_policies)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from trademesh.core.supervisor.engine import Bounds
from trademesh.core.supervisor.engine.model import ActionKind
from trademesh.core.supervisor.engine.rules import propose
from trademesh.core.supervisor.observe import observation

D = Decimal


def _answers(trips: int, winners: int, *, second_asset_trips: int = 0) -> dict[str, Any]:
    lines: list[dict[str, Any]] = [
        {"strategy_id": "trend", "asset": "USDT", "realised": "-12", "round_trips": trips, "winners": winners,
         "curve": [{"pnl": "0"}, {"pnl": "-12"}]},
    ]  # fmt: skip
    if second_asset_trips:
        lines.append(
            {"strategy_id": "trend", "asset": "BTC", "round_trips": second_asset_trips, "winners": 0}
        )
    return {
        "list_strategies": {"detectors": [{"patches": [{"patch": "trend/sim/BTC/USDT", "state": "active"}]}]},
        "ledger_pnl": {"strategies": lines},
        "inspector_state": {"state": "active", "capital": [{"strategy_id": "trend", "reserved": "1000"}]},
        "inspector_policies": {"status": []},
    }


def test_the_ledgers_round_trips_and_winners_reach_the_strategys_figures() -> None:
    (figures,) = observation(1, _answers(30, 9)).strategies
    assert (figures.round_trips, figures.winners) == (30, 9)
    assert figures.hit_rate == D("0.3")


def test_the_trips_of_a_strategys_lines_in_several_assets_are_summed() -> None:
    (figures,) = observation(1, _answers(10, 4, second_asset_trips=5)).strategies
    assert (figures.round_trips, figures.winners) == (15, 4)


def test_a_low_hit_rate_over_enough_trips_is_judged_and_cuts_the_capital() -> None:
    bounds = Bounds()
    (cut,) = propose(observation(1, _answers(bounds.min_round_trips, 2)), bounds)
    assert cut.kind is ActionKind.SET_CAPITAL and cut.strategy == "trend"
    assert cut.value == D(1000) * (1 - bounds.capital_step)
    assert "hit rate 10.0%" in cut.reason
    # Too few trips to judge: nothing.
    assert propose(observation(1, _answers(bounds.min_round_trips - 1, 0)), bounds) == []


def test_counts_that_are_not_counts_are_read_as_none() -> None:
    answers = _answers(0, 0)
    answers["ledger_pnl"]["strategies"][0].update(round_trips="12", winners=-3)
    (figures,) = observation(1, answers).strategies
    assert (figures.round_trips, figures.winners, figures.hit_rate) == (0, 0, None)
