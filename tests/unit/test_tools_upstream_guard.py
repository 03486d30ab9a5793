"""The tools' guard (trademesh.core.tools.upstream): reads go, dry runs go, and beyond reading only what
a permission of the caller's own key covers (close_all), never trading."""

from __future__ import annotations

import pytest
from google.protobuf.message import Message

from trademesh.advisor.v1 import service_pb2 as av
from trademesh.backtest.v1 import backtest_pb2 as bt
from trademesh.core.platform.access.contracts import Principal, Scope
from trademesh.core.platform.errors import InvalidArgument, PermissionDenied
from trademesh.core.tools.inspector import InspectorTools
from trademesh.core.tools.supervisor import SupervisorTools
from trademesh.core.tools.upstream import Upstream
from trademesh.risk.v1 import inspector_pb2 as rk
from trademesh.supervisor.v1 import supervisor_pb2 as sv

INSPECTOR = "trademesh.risk.v1.Inspector"
CLOSE_ALL = rk.SetModeRequest(mode=rk.MODE_CLOSE_ALL, reason="test")


class Reached(Exception):
    """The call passed the guard: the resolver was asked where to send it."""


class _Nowhere:
    def resolve(self, service: str, target: str | None) -> str:
        raise Reached(f"{service}")

    def names(self, service: str) -> list[str]:
        return []


def _key(*scopes: Scope) -> Principal:
    return Principal("agent", frozenset(scopes))


async def _call(service: str, method: str, request: Message, caller: Principal | None = None) -> None:
    await Upstream(_Nowhere(), 1.0).unary(service, None, method, request, type(request), caller=caller)


async def test_reads_and_dry_runs_pass_the_guard() -> None:
    with pytest.raises(Reached):
        await _call(INSPECTOR, "GetRiskState", rk.GetRiskStateRequest())
    with pytest.raises(Reached):
        await _call("trademesh.advisor.v1.Advisor", "Decide", av.DecideRequest(publish=False))


@pytest.mark.parametrize(
    ("method", "request_"),
    [
        ("SubmitIntent", rk.SubmitIntentRequest()),
        ("CancelAllOrders", rk.CancelAllOrdersRequest(venue="sim", reason="x")),
        ("SetMode", rk.SetModeRequest(mode=rk.MODE_STAND_DOWN, reason="x")),
        ("UpdatePolicies", rk.UpdatePoliciesRequest(toml="", reason="x")),
    ],
)
async def test_a_tool_never_trades_even_for_a_key_that_may(method: str, request_: Message) -> None:
    everything = _key(Scope.READ, Scope.TRADE, Scope.ADMIN, Scope.CLOSE_ALL)
    for caller in (None, everything):
        with pytest.raises(PermissionDenied, match="MCP tools only read"):
            await _call(INSPECTOR, method, request_, caller)


async def test_close_all_goes_only_for_a_caller_holding_its_permission() -> None:
    with pytest.raises(PermissionDenied, match="MCP tools only read"):
        await _call(INSPECTOR, "SetMode", CLOSE_ALL)
    with pytest.raises(
        PermissionDenied, match="needs the 'close_all' scope; API key 'agent' has admin, read, trade"
    ):
        await _call(INSPECTOR, "SetMode", CLOSE_ALL, _key(Scope.READ, Scope.TRADE, Scope.ADMIN))
    with pytest.raises(Reached):
        await _call(INSPECTOR, "SetMode", CLOSE_ALL, _key(Scope.READ, Scope.CLOSE_ALL))


async def test_the_close_all_tool_refuses_before_calling() -> None:
    tools = InspectorTools(Upstream(_Nowhere(), 1.0))
    with pytest.raises(PermissionDenied, match="none given"):
        await tools.close_all("flatten", caller=None)
    with pytest.raises(PermissionDenied, match="'close_all' scope"):
        await tools.close_all("flatten", caller=_key(Scope.READ, Scope.TRADE))
    with pytest.raises(Reached):
        await tools.close_all("flatten", caller=_key(Scope.READ, Scope.CLOSE_ALL))


async def test_starting_a_backtest_goes_only_for_a_key_holding_trade() -> None:
    backtest, start = "trademesh.backtest.v1.Backtest", bt.StartBacktestRequest()
    with pytest.raises(Reached):
        await _call(backtest, "StartBacktest", start, _key(Scope.READ, Scope.TRADE))
    with pytest.raises(PermissionDenied):
        await _call(backtest, "StartBacktest", start, _key(Scope.READ))
    with pytest.raises(PermissionDenied, match="MCP tools only read"):
        await _call(backtest, "StartBacktest", start)
    # A trade key gets a backtest started, and still no order through a tool.
    with pytest.raises(PermissionDenied, match="MCP tools only read"):
        await _call(backtest, "CancelBacktest", bt.CancelBacktestRequest(run_id="x"), _key(Scope.TRADE))


async def test_a_tool_acts_for_its_caller_only_in_the_form_its_tool_builds() -> None:
    """inspector_resume (SetMode RESUME: trade) and set_capital (one strategy's capital over the
    policies in force: admin) go for a key holding the scope; any other SetMode or policy text
    (a stand-down, a whole policy file) stays refused whatever the key."""
    resume = rk.SetModeRequest(mode=rk.MODE_RESUME, reason="x")
    with pytest.raises(Reached):
        await _call(INSPECTOR, "SetMode", resume, _key(Scope.READ, Scope.TRADE))
    with pytest.raises(PermissionDenied, match="needs the 'trade' scope"):
        await _call(INSPECTOR, "SetMode", resume, _key(Scope.READ))
    capital = rk.UpdatePoliciesRequest(
        toml='[capital.reserved]\n"trend" = "800"\n', reason="x", over_current=True
    )
    with pytest.raises(Reached):
        await _call(INSPECTOR, "UpdatePolicies", capital, _key(Scope.READ, Scope.ADMIN))
    # A change the inspector refuses unless it only lowers limits (tighten_policy): admin too.
    tighter = rk.UpdatePoliciesRequest(
        toml='[loss]\nmax_drawdown = "0.05"\n', reason="x", over_current=True, tighten_only=True
    )
    with pytest.raises(Reached):
        await _call(INSPECTOR, "UpdatePolicies", tighter, _key(Scope.READ, Scope.ADMIN))
    with pytest.raises(PermissionDenied, match="needs the 'admin' scope"):
        await _call(INSPECTOR, "UpdatePolicies", tighter, _key(Scope.READ, Scope.TRADE))
    everything = _key(Scope.READ, Scope.TRADE, Scope.ADMIN, Scope.CLOSE_ALL)
    for other in (
        rk.UpdatePoliciesRequest(
            toml='[capital.reserved]\n"trend" = "800"\n', reason="x"
        ),  # over the shipped set
        rk.UpdatePoliciesRequest(toml='[loss]\nmax_drawdown = "0.5"\n', reason="x", over_current=True),
        rk.UpdatePoliciesRequest(
            toml='[capital.reserved]\n"a" = "1"\n"b" = "2"\n', reason="x", over_current=True
        ),
        # tighten_only read over the shipped set: not the tool's form.
        rk.UpdatePoliciesRequest(toml='[loss]\nmax_drawdown = "0.05"\n', reason="x", tighten_only=True),
    ):
        with pytest.raises(PermissionDenied, match="MCP tools only read"):
            await _call(INSPECTOR, "UpdatePolicies", other, everything)


async def test_a_supervisors_proposal_is_decided_only_for_a_key_holding_trade_and_its_mode_never() -> None:
    """supervisor_decide's Approve and Reject (trade) go for a key holding trade; the Supervisor's
    mode (SetMode, admin) is no tool's, whatever the key."""
    supervisor = "trademesh.supervisor.v1.Supervisor"
    for method, request_ in (
        ("Approve", sv.ApproveRequest(proposal_id="p1", reason="x")),
        ("Reject", sv.RejectRequest(proposal_id="p1", reason="x")),
    ):
        with pytest.raises(Reached):
            await _call(supervisor, method, request_, _key(Scope.READ, Scope.TRADE))
        with pytest.raises(PermissionDenied, match="needs the 'trade' scope"):
            await _call(supervisor, method, request_, _key(Scope.READ))
        with pytest.raises(PermissionDenied, match="MCP tools only read"):
            await _call(supervisor, method, request_)
    everything = _key(Scope.READ, Scope.TRADE, Scope.ADMIN, Scope.CLOSE_ALL)
    with pytest.raises(PermissionDenied, match="MCP tools only read"):
        await _call(supervisor, "SetMode", sv.SetModeRequest(mode=sv.MODE_ACT), everything)


async def test_the_supervisor_decide_tool_checks_its_caller_and_arguments_before_calling() -> None:
    tools = SupervisorTools(Upstream(_Nowhere(), 1.0))
    with pytest.raises(PermissionDenied, match="none given"):
        await tools.supervisor_decide("p1", "approve", "go", caller=None)
    with pytest.raises(PermissionDenied, match="Approve needs the 'trade' scope"):
        await tools.supervisor_decide("p1", "approve", "go", caller=_key(Scope.READ))
    with pytest.raises(InvalidArgument) as caught:
        await tools.supervisor_decide("x" * 129, "maybe", "", caller=_key(Scope.READ, Scope.TRADE))
    assert [v.field for v in caught.value.violations] == ["proposal_id", "decision", "reason"]
    with pytest.raises(Reached):  # asked for its open proposals
        await tools.supervisor_decide("p1", "reject", "not now", caller=_key(Scope.READ, Scope.TRADE))
