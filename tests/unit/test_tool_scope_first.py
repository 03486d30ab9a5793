"""A strategy paused or resumed through the tools (pause_strategy, resume_strategy: the MCP
tools, Telegram's /pause and /resume) needs `trade` whatever the patches' state: the scope is
checked before anything is looked up (issue 57 item 16c; a read key was told OK when nothing
changed, the patches being in that state already)."""

from __future__ import annotations

import pytest

from trademesh.core.platform.access.contracts import Principal, Scope
from trademesh.core.platform.errors import NotFound, PermissionDenied
from trademesh.core.tools.resolver import MeshResolver
from trademesh.core.tools.strategies import StrategyTools
from trademesh.core.tools.upstream import Upstream

READER = Principal("dashboard", frozenset({Scope.READ}))
TRADER = Principal("desk", frozenset({Scope.READ, Scope.TRADE}))


@pytest.mark.parametrize("tool", ["pause_strategy", "resume_strategy"])
async def test_a_read_key_is_refused_before_the_state_is_looked_at(tool: str) -> None:
    tools = StrategyTools(Upstream(MeshResolver(None), 1.0))  # no detector: nothing would change
    with pytest.raises(PermissionDenied, match="trade"):
        await getattr(tools, tool)("trend", caller=READER)


@pytest.mark.parametrize("tool", ["pause_strategy", "resume_strategy"])
async def test_a_trade_key_is_told_what_is_there(tool: str) -> None:
    tools = StrategyTools(Upstream(MeshResolver(None), 1.0))
    with pytest.raises(NotFound, match="no detector runs a strategy 'trend'"):
        await getattr(tools, tool)("trend", caller=TRADER)
