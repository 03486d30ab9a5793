"""A strategy that exits by its own request, in a backtest (trademesh.core.backtest.run): its requests
are planned by the live inspector's function and checked by the same core, its protective pair
is cancelled with the close, a request with nothing to close is refused with its reason, and
what it hears back (its position, the inspector's state) comes from the backtest's inspector."""

from __future__ import annotations

from pathlib import Path

import pytest

from trademesh.core.backtest.assemble import build
from trademesh.core.backtest.config import BacktestConfig
from trademesh.core.backtest.run import Backtest, Tape
from trademesh.core.backtest.session import drive_sync
from trademesh.core.backtest.synthetic import Walk, walk
from trademesh.core.domain.model import OrderStatus
from trademesh.core.inspector.engine.actions import OrderRole
from trademesh.core.inspector.engine.events import RiskAction
from trademesh.signal.v1 import signal_pb2 as sig

EXITS = Path("trademesh/core/detector/strategies/exits/trend_exit.toml")
SPEC = Walk(steps=1800, volatility=0.001)
CLOSE_ALWAYS = """
id = "close_always"
venues = ["sim"]
symbols = ["BTC/USDT"]
warmup = 2
cables = [
    "bars.bar -> ohlcv.bar", "ohlcv.close -> up.a", "ohlcv.close -> before.a", "before.out -> up.b",
    "up.out -> exit.trigger",
]

[[modules]]
id = "bars"
type = "trade_bars"
params = { timeframe = "1s" }

[[modules]]
id = "ohlcv"
type = "bar_fields"

[[modules]]
id = "before"
type = "lag"
params = { steps = 1 }

[[modules]]
id = "up"
type = "compare"
params = { op = ">" }

[[modules]]
id = "exit"
type = "position"
params = { action = "close" }
"""


def run(*strategies: Path) -> tuple[Backtest, Tape]:
    settings = BacktestConfig(
        strategies=strategies, start_ns=SPEC.start_ns, end_ns=SPEC.start_ns + SPEC.steps * SPEC.step_ns,
        symbols=("BTC/USDT",), sample_s=60,
    )  # fmt: skip
    backtest = build(settings)
    return backtest, drive_sync(backtest, walk(SPEC))


@pytest.fixture(scope="module")
def done() -> tuple[Backtest, Tape]:
    return run(EXITS)


def test_each_entry_is_closed_by_the_strategys_own_request_placed_by_the_inspector(
    done: tuple[Backtest, Tape],
) -> None:
    _, tape = done
    assert len(tape.requests) >= 2, "the walk gives the strategy entries and exits"
    assert {r.action for r in tape.requests} == {sig.POSITION_ACTION_CLOSE}
    orders = [v.orders[0] for v in tape.verdicts]
    assert all(v.action is RiskAction.ALLOW for v in tape.verdicts)
    roles = [o.role for o in orders]
    assert roles[: 2 * len(tape.requests)] == [OrderRole.ENTRY, OrderRole.EXIT] * len(tape.requests)
    for entry, exit_ in zip(orders[::2], orders[1::2], strict=False):
        assert exit_.reduce_only and exit_.side is not entry.side and exit_.size == entry.size
        assert exit_.strategy_id == "trend_exit"
    assert tape.refusals == []
    assert {f.strategy for f in tape.fills} == {"trend_exit"}


def test_the_close_cancels_the_protective_pair(done: tuple[Backtest, Tape]) -> None:
    backtest, tape = done
    exits = {v.orders[0].client_order_id for v in tape.verdicts}
    ended = {e.order.client_order_id: e.order for e in tape.orders}  # each order's last update
    protective = [o for o in ended.values() if o.reduce_only and o.client_order_id not in exits]
    assert len(protective) >= 2 * len(tape.requests)  # a stop-loss and a take-profit per entry
    assert all(o.status is OrderStatus.CANCELED for o in protective)
    assert backtest.market.open_orders() == []


def test_a_close_with_nothing_to_close_is_refused_with_its_reason(tmp_path: Path) -> None:
    path = tmp_path / "close_always.toml"
    path.write_text(CLOSE_ALWAYS)
    _, tape = run(path)
    assert tape.requests and not tape.verdicts
    assert {e.policy for e in tape.refusals} == {"request.no_position"}
    assert len(tape.refusals) == len(tape.requests)
    assert all("close_always" in e.reason for e in tape.refusals)


def test_the_same_history_gives_the_same_requests_and_verdicts(done: tuple[Backtest, Tape]) -> None:
    _, again = run(EXITS)
    _, tape = done
    assert [r.SerializeToString() for r in again.requests] == [r.SerializeToString() for r in tape.requests]
    assert again.verdicts == tape.verdicts and again.orders == tape.orders
