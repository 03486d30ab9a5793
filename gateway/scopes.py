"""Which scope each method needs: the one table the gRPC-web bridge, the Mux and MCP check.

A method that is not in the table needs ADMIN, so a new RPC is refused to read and trade keys
until it is classified here (tests/unit/test_gateway_scopes.py fails until it is).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from core.errors import PermissionDenied, shown
from gateway.contracts import Principal, Scope

__all__ = ["METHOD_SCOPES", "check_scope", "required_scope"]

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
            {"ListInstruments": _READ, "Subscribe": _READ, "GetCandles": _READ},
        ),
        **_service("trademesh.livedata.v1.LiveData", {"Subscribe": _READ, "ListStreams": _READ}),
        **_service(
            "trademesh.tradeflow.v1.TradeFlow",
            {
                "PlaceOrder": _TRADE,
                "CancelOrder": _TRADE,
                "CancelAllOrders": _TRADE,
                "GetOrder": _READ,
                "ListOpenOrders": _READ,
                "GetBalances": _READ,
                "GetPositions": _READ,
                "StreamExecutions": _READ,
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
        # The inspector: reads are reads; an intent, a cancel or a mode places or cancels
        # orders: trade; the policies bound every order: admin.
        **_service(
            "trademesh.risk.v1.Inspector",
            {
                **{m: _TRADE for m in ("SubmitIntent", "CancelOrder", "CancelAllOrders", "SetMode")},
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
                "UpdatePolicies": _ADMIN,
            },
        ),
        **_service("grpc.health.v1.Health", {"Check": _READ, "List": _READ, "Watch": _READ}),
        **_service("grpc.reflection.v1alpha.ServerReflection", {"ServerReflectionInfo": _READ}),
    }
)


def required_scope(service: str, method: str) -> Scope:
    """The scope a call of `service`/`method` needs; ADMIN for a method not in the table."""
    return METHOD_SCOPES.get(f"{service}/{method}", Scope.ADMIN)


def check_scope(principal: Principal, service: str, method: str) -> None:
    """PermissionDenied, naming the scope and the key, unless the principal holds it."""
    needed = required_scope(service, method)
    if needed in principal.scopes:
        return
    name = f"{service}/{method}"
    # The path is the client's to choose: an unclassified one is quoted cut short.
    label = name if name in METHOD_SCOPES else shown(name)
    held = ", ".join(sorted(principal.scopes)) or "none"
    raise PermissionDenied(
        f"{label} needs the {needed.value!r} scope; API key {principal.key_name!r} has {held}"
        f" (an admin can run `trademesh keys scopes {principal.key_name} --scope {needed.value} ...`)"
    )
