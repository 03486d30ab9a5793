"""Which scope each method needs: the one table the gRPC-web bridge, the Mux and MCP check.

A method that is not in the table needs ADMIN, so a new RPC is refused to read and trade keys
until it is classified here (tests/unit/test_gateway_scopes.py fails until it is).

A few methods do something graver for some requests than for others: REQUEST_SCOPES says which
requests of a method need another scope than the table's (Inspector's SetMode with
MODE_CLOSE_ALL needs `close_all`, a permission `trade` does not carry). Callers that hold the
request pass it to check_scope; one that cannot be read counts as the graver form.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from google.protobuf.message import DecodeError, Message

from trademesh.core.platform.access.contracts import Principal, Scope
from trademesh.core.platform.errors import PermissionDenied, shown
from trademesh.risk.v1 import inspector_pb2 as rk

__all__ = [
    "METHOD_SCOPES",
    "REQUEST_SCOPES",
    "RequestRule",
    "check_scope",
    "depends_on_request",
    "required_scope",
]

_READ, _TRADE, _ADMIN = Scope.READ, Scope.TRADE, Scope.ADMIN


def _service(name: str, methods: Mapping[str, Scope]) -> dict[str, Scope]:
    return {f"{name}/{method}": scope for method, scope in methods.items()}


METHOD_SCOPES: Mapping[str, Scope] = MappingProxyType(
    {
        **_service(
            "trademesh.admin.v1.Admin",
            {
                "GetStatus": _READ,
                "ListSubscriptions": _READ,
                # Arming the dead-man switch cancels every open order when it lapses: a
                # trader's tool, as CancelAllOrders is.
                "Heartbeat": _TRADE,
                "AddSubscriptions": _ADMIN,
                "RemoveSubscriptions": _ADMIN,
                "Reconnect": _ADMIN,
                "Drain": _ADMIN,
            },
        ),
        **_service(
            "trademesh.marketdata.v1.MarketData",
            {
                "ListInstruments": _READ,
                "Subscribe": _READ,
                "GetCandles": _READ,
                "GetTrades": _READ,
                "GetTickers": _READ,
            },
        ),
        **_service("trademesh.livedata.v1.LiveData", {"Subscribe": _READ, "ListStreams": _READ}),
        **_service(
            "trademesh.overwatch.v1.Overwatch",
            {"GetBoard": _READ, "StreamRegimes": _READ, "StreamOverview": _READ},
        ),
        # The Supervisor: reading its state and audit; an approval carries a proposal out (a
        # strategy paused or resumed: trade); its mode (act: it acts on its own) is the admin's.
        **_service(
            "trademesh.supervisor.v1.Supervisor",
            {"GetState": _READ, "StreamAudit": _READ, "Approve": _TRADE, "Reject": _TRADE, "SetMode": _ADMIN},
        ),
        **_service(
            "trademesh.screener.v1.Screener",
            {"ListScreens": _READ, "GetResults": _READ, "StreamResults": _READ},
        ),
        **_service(
            "trademesh.tradeflow.v1.TradeFlow",
            {
                "PlaceOrder": _TRADE,
                "CancelOrder": _TRADE,
                "CancelAllOrders": _TRADE,
                "AmendOrder": _TRADE,
                "SetLeverage": _TRADE,
                "GetLeverage": _READ,
                "GetOrder": _READ,
                "ListOpenOrders": _READ,
                "GetBalances": _READ,
                "GetPositions": _READ,
                "StreamExecutions": _READ,
                "StreamAccount": _READ,
                "ListFundingPayments": _READ,
            },
        ),
        # Open, Add and Remove change only the caller's own session; each Add is checked
        # against the scope of the method it subscribes to.
        **_service("trademesh.mux.v1.Mux", {"Open": _READ, "Add": _READ, "Remove": _READ}),
        # Register, Heartbeat and Unregister are mesh-internal (refused over gRPC-web anyway).
        **_service(
            "trademesh.registry.v1.Registry",
            {"ListServices": _READ, "Register": _ADMIN, "Heartbeat": _ADMIN, "Unregister": _ADMIN},
        ),
        # The services board (served by the gateway itself): what runs, how it does.
        **_service("trademesh.services.v1.Services", {"List": _READ, "Watch": _READ}),
        # Reading strategies is a read; editing one or changing its state changes what the
        # mesh trades (its signals become orders once advisor and inspector approve): trade.
        **_service(
            "trademesh.patch.v1.Patch",
            {
                **{
                    method: _READ
                    for method in (
                        "GetCatalog",
                        "ListPatches",
                        "GetPatch",
                        "ListSignals",
                        "StreamProbes",
                        "StreamPatchEvents",
                        "StreamStrategyStatus",
                    )
                },
                **{
                    method: _TRADE
                    for method in (
                        "CreatePatch",
                        "UpdatePatch",
                        "DeletePatch",
                        "AddModule",
                        "RemoveModule",
                        "ConnectCable",
                        "DisconnectCable",
                        "SetParams",
                        "ActivatePatch",
                        "PausePatch",
                        "ArchivePatch",
                    )
                },
            },
        ),
        # Decide may publish its intent (publish=true), which Inspector may turn into an order: trade.
        **_service(
            "trademesh.advisor.v1.Advisor",
            {
                "Decide": _TRADE,
                **{
                    m: _READ
                    for m in ("GetDecision", "ListDecisions", "WatchDecisions", "GetCalibration", "GetModel")
                },
            },
        ),
        # Inspector alone places orders: submitting an intent or cancelling is trading; the
        # policies are the operator's (admin). SetMode's CLOSE_ALL needs more: REQUEST_SCOPES.
        **_service(
            "trademesh.risk.v1.Inspector",
            {
                **{
                    m: _READ
                    for m in (
                        "GetRiskState",
                        "ListRiskEvents",
                        "WatchRiskEvents",
                        "GetPolicies",
                        "ListPositions",
                        "GetAudit",
                    )
                },
                **{m: _TRADE for m in ("SubmitIntent", "CancelOrder", "CancelAllOrders", "SetMode")},
                "UpdatePolicies": _ADMIN,
            },
        ),
        # The ledger's books: every method reads (the ledger posts from the bus, never on request).
        **_service(
            "trademesh.ledger.v1.Ledger",
            {
                m: _READ
                for m in ("GetBalances", "ListTransfers", "GetPnl", "WatchTransfers", "Verify", "Trace")
            },
        ),
        # Backtests read history and write only their own results; starting or cancelling one
        # spends the machine's cores: an operator's (trade) call, reading them is read.
        **_service(
            "trademesh.backtest.v1.Backtest",
            {
                **{m: _TRADE for m in ("StartBacktest", "CancelBacktest")},
                **{m: _READ for m in ("WatchProgress", "GetResult", "ListRuns", "ListStrategies")},
            },
        ),
        # Every service's log lines (the gateway's LogHub): reading them changes nothing.
        **_service("trademesh.logs.v1.Logs", {"Tail": _READ}),
        # What history the recorder holds, and its bars (trademesh.core.history): reading changes nothing.
        **_service("trademesh.history.v1.History", {"GetCoverage": _READ, "GetBars": _READ}),
        **_service("grpc.health.v1.Health", {"Check": _READ, "List": _READ, "Watch": _READ}),
        **_service("grpc.reflection.v1alpha.ServerReflection", {"ServerReflectionInfo": _READ}),
    }
)


@dataclass(frozen=True)
class RequestRule:
    """The requests of one method that need `scope` rather than the table's."""

    request: type[Message]
    applies: Callable[[Any], bool]
    scope: Scope
    # The requests it names, for a refusal: "with mode MODE_CLOSE_ALL".
    form: str

    def matches(self, request: bytes | Message) -> bool:
        if isinstance(request, bytes):
            try:
                request = self.request.FromString(request)
            except DecodeError:
                return True  # unreadable: it may be the graver form
        return bool(self.applies(request))


REQUEST_SCOPES: Mapping[str, RequestRule] = MappingProxyType(
    {
        # Cancel every order and flatten every position at every venue: an emergency button
        # given on purpose (`trademesh keys scopes NAME --scope close_all`), not to every trader.
        "trademesh.risk.v1.Inspector/SetMode": RequestRule(
            rk.SetModeRequest,
            lambda request: request.mode == rk.MODE_CLOSE_ALL,
            Scope.CLOSE_ALL,
            "with mode MODE_CLOSE_ALL",
        ),
    }
)


def depends_on_request(service: str, method: str) -> bool:
    """Whether the scope a call needs depends on its request (check it once the request is read)."""
    return f"{service}/{method}" in REQUEST_SCOPES


def required_scope(service: str, method: str, request: bytes | Message | None = None) -> Scope:
    """The scope a call of `service`/`method` needs; ADMIN for a method not in the table.

    `request` (the message, or its serialized bytes): the scope of that request when a
    REQUEST_SCOPES rule covers it; without it, the method's scope in the table.
    """
    name = f"{service}/{method}"
    rule = REQUEST_SCOPES.get(name)
    if rule is not None and request is not None and rule.matches(request):
        return rule.scope
    return METHOD_SCOPES.get(name, Scope.ADMIN)


def check_scope(
    principal: Principal, service: str, method: str, request: bytes | Message | None = None
) -> None:
    """PermissionDenied, naming the scope and the key, unless the principal holds it."""
    needed = required_scope(service, method, request)
    if needed in principal.scopes:
        return
    name = f"{service}/{method}"
    # The path is the client's to choose: an unclassified one is quoted cut short.
    label = name if name in METHOD_SCOPES else shown(name)
    if needed is not METHOD_SCOPES.get(name, Scope.ADMIN):
        label = f"{label} {REQUEST_SCOPES[name].form}"
    held = ", ".join(sorted(principal.scopes)) or "none"
    raise PermissionDenied(
        f"{label} needs the {needed.value!r} scope; API key {principal.key_name!r} has {held}"
        f" (an admin can run `trademesh keys scopes {principal.key_name} --scope {needed.value} ...`)"
    )
