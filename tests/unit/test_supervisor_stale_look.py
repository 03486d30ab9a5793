"""A look whose answers were read while an approval acted is not judged: it saw the mesh before
the action (the strategy just resumed still paused) and would propose the same action again. A
test run saw it: a resume approved through MCP, then the same resume proposed 0.16 s later and
left open. The mesh here is a stand-in for the gateway's MCP tools (MeshTools.call), which the
Supervisor reads through; the integration tests (tests/integration/test_supervisor.py) run it
against the real ones."""

from __future__ import annotations

import asyncio
from typing import Any

from trademesh.core.supervisor.app import SupervisorApp, SupervisorConfig
from trademesh.core.supervisor.engine import ActionKind, Mode


class Mesh:
    """One strategy, `trend`, paused until the tool `resume_strategy` resumes it; with `hold`
    set, the strategies' answer is read, then handed over only once `hold` is set."""

    def __init__(self) -> None:
        self.paused = True
        self.hold: asyncio.Event | None = None
        self.read = asyncio.Event()
        # With `resuming` set, resume_strategy is under way until it is set: the strategy
        # resumes only then (an action's tool call in flight).
        self.resuming: asyncio.Event | None = None
        self.resume_called = asyncio.Event()

    async def call(self, tool: str, **arguments: Any) -> dict[str, Any]:
        if tool == "list_strategies":
            state = "paused" if self.paused else "active"
            answer = {"detectors": [{"patches": [{"patch": "trend/sim/BTC/USDT", "state": state}]}]}
            if self.hold is not None:
                self.read.set()
                await self.hold.wait()
            return answer
        if tool == "resume_strategy":
            self.resume_called.set()
            if self.resuming is not None:
                await self.resuming.wait()
            self.paused = False
            return {"patches": [{"state": "active"}]}
        answers: dict[str, dict[str, Any]] = {
            "ledger_pnl": {"strategies": [{"strategy_id": "trend", "realised": "0", "curve": []}]},
            "inspector_state": {"state": "active", "capital": []},
            "inspector_policies": {"status": []},
            "regimes": {"markets": []},
        }
        return answers[tool]


def supervisor(mesh: Mesh) -> SupervisorApp:
    app = SupervisorApp(SupervisorConfig(gateway_url="http://127.0.0.1:1", api_key="k", mode=Mode.PROPOSE))
    app.tools = mesh  # type: ignore[assignment]
    return app


async def test_a_look_read_while_an_approval_acted_proposes_nothing_again() -> None:
    mesh = Mesh()
    app = supervisor(mesh)
    await app.look()
    (proposal_id, proposal), *others = app.engine.open.items()
    assert proposal.kind is ActionKind.RESUME and others == []
    mesh.hold = asyncio.Event()
    look = asyncio.create_task(app.look())
    await asyncio.wait_for(mesh.read.wait(), 5)  # the look has read "paused"
    await app.approve(proposal_id, "operator", "recovered")
    assert not mesh.paused
    mesh.hold.set()
    await asyncio.wait_for(look, 5)
    assert app.engine.open == {}
    assert "stale" in app.trail.recent[-1].detail
    mesh.hold = None
    await app.look()  # the next look reads the strategy active: nothing to resume
    assert app.engine.open == {}


async def test_a_look_begun_while_an_approvals_action_was_under_way_proposes_nothing_again() -> None:
    """The look read "paused" after the approval had begun and before its resume took effect (a
    run saw it: the approval's counter had moved before that look began, so the look was judged
    and the same resume proposed again)."""
    mesh = Mesh()
    app = supervisor(mesh)
    await app.look()
    ((proposal_id, _),) = app.engine.open.items()
    mesh.resuming = asyncio.Event()
    approval = asyncio.create_task(app.approve(proposal_id, "operator", "recovered"))
    await asyncio.wait_for(mesh.resume_called.wait(), 5)  # the action is under way
    mesh.hold = asyncio.Event()
    mesh.hold.set()  # the look's read is seen (mesh.read), and not held
    look = asyncio.create_task(app.look())  # reads "paused", then waits for the approval's lock
    await asyncio.wait_for(mesh.read.wait(), 5)
    assert (mesh.paused, look.done()) == (True, False)  # read paused, waiting for the lock
    mesh.resuming.set()
    await asyncio.wait_for(approval, 5)
    await asyncio.wait_for(look, 5)
    assert not mesh.paused
    assert app.engine.open == {}, "the look that read the strategy paused proposed it again"
    assert "stale" in app.trail.recent[-1].detail
