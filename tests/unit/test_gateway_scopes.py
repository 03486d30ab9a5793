"""The scope table (trademesh.core.platform.access.scopes): every method of every contract classified on
purpose."""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

import pytest
from google.protobuf import descriptor_pool

from trademesh.core.platform.access.contracts import Principal, Scope
from trademesh.core.platform.access.scopes import (
    METHOD_SCOPES,
    REQUEST_SCOPES,
    check_scope,
    depends_on_request,
    required_scope,
)
from trademesh.core.platform.errors import PermissionDenied
from trademesh.gateway.grpcweb.methods import method_kind
from trademesh.risk.v1 import inspector_pb2 as rk

# The services the gateway may be asked for: our contracts plus grpc's health and reflection.
_EXTRA_SERVICES = ("grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection")


def _contract_methods() -> set[str]:
    """Every method of every service in proto/ (its generated modules) and the extras."""
    import trademesh

    services = set(_EXTRA_SERVICES)
    for module in pkgutil.walk_packages(trademesh.__path__, "trademesh."):
        if module.name.endswith("_pb2"):
            descriptor = importlib.import_module(module.name).DESCRIPTOR
            services |= {service.full_name for service in descriptor.services_by_name.values()}
    method_kind("grpc.health.v1.Health", "Check")  # the gateway's loader adds the extras
    pool = descriptor_pool.Default()
    found = set()
    for name in services:
        found |= {f"{name}/{method}" for method in pool.FindServiceByName(name).methods_by_name}
    return found


def test_every_method_of_every_contract_is_classified_and_nothing_else_is() -> None:
    methods = _contract_methods()
    assert "trademesh.admin.v1.Admin/Drain" in methods and len(methods) > 30
    unclassified = sorted(methods - METHOD_SCOPES.keys())
    assert unclassified == [], (
        f"add these to trademesh.core.platform.access.scopes.METHOD_SCOPES: {unclassified}"
    )
    stale = sorted(METHOD_SCOPES.keys() - methods)
    assert stale == [], f"no contract has these any more: {stale}"


@pytest.mark.parametrize(
    ("method", "scope"),
    [
        ("trademesh.admin.v1.Admin/Drain", Scope.ADMIN),
        ("trademesh.admin.v1.Admin/RemoveSubscriptions", Scope.ADMIN),
        ("trademesh.admin.v1.Admin/Heartbeat", Scope.TRADE),
        ("trademesh.tradeflow.v1.TradeFlow/PlaceOrder", Scope.TRADE),
        ("trademesh.tradeflow.v1.TradeFlow/ListOpenOrders", Scope.READ),
        ("trademesh.marketdata.v1.MarketData/Subscribe", Scope.READ),
        ("trademesh.admin.v1.Admin/GetStatus", Scope.READ),
        *[
            (f"trademesh.risk.v1.Inspector/{m}", Scope.READ)
            for m in (
                "GetRiskState",
                "ListRiskEvents",
                "WatchRiskEvents",
                "GetPolicies",
                "ListPositions",
                "GetAudit",
            )
        ],
        *[
            (f"trademesh.risk.v1.Inspector/{m}", Scope.TRADE)
            for m in ("SubmitIntent", "CancelOrder", "CancelAllOrders", "SetMode")
        ],
        ("trademesh.risk.v1.Inspector/UpdatePolicies", Scope.ADMIN),
        *[
            (f"trademesh.ledger.v1.Ledger/{m}", Scope.READ)
            for m in ("GetBalances", "ListTransfers", "GetPnl", "WatchTransfers", "Verify", "Trace")
        ],
    ],
)
def test_methods_need_the_scope_of_what_they_do(method: str, scope: Scope) -> None:
    service, _, name = method.partition("/")
    assert required_scope(service, name) is scope


def test_a_method_of_no_contract_needs_admin() -> None:
    assert required_scope("acme.v1.Rockets", "Launch") is Scope.ADMIN
    reader = Principal("reader", frozenset({Scope.READ, Scope.TRADE}))
    with pytest.raises(PermissionDenied, match="'admin' scope"):
        check_scope(reader, "acme.v1.Rockets", "Launch" + "x" * 500)


def test_a_refusal_names_the_scope_needed_and_the_key() -> None:
    reader = Principal("dashboard", frozenset({Scope.READ}))
    check_scope(reader, "trademesh.marketdata.v1.MarketData", "Subscribe")
    with pytest.raises(PermissionDenied) as refused:
        check_scope(reader, "trademesh.admin.v1.Admin", "Drain")
    message = str(refused.value)
    assert "'admin' scope" in message and "'dashboard'" in message and "has read" in message
    with pytest.raises(PermissionDenied, match="has none"):
        check_scope(Principal("empty"), "trademesh.admin.v1.Admin", "GetStatus")


INSPECTOR = "trademesh.risk.v1.Inspector"
CLOSE_ALL = rk.SetModeRequest(mode=rk.MODE_CLOSE_ALL, reason="flatten")


@pytest.mark.parametrize("mode", [rk.MODE_STAND_DOWN, rk.MODE_RESUME, rk.MODE_UNSPECIFIED])
def test_set_mode_is_trading_but_close_all_needs_its_own_permission(mode: int) -> None:
    other = rk.SetModeRequest(mode=mode, reason="why")  # type: ignore[arg-type]
    for request in (other, other.SerializeToString()):
        assert required_scope(INSPECTOR, "SetMode", request) is Scope.TRADE
    for request in (CLOSE_ALL, CLOSE_ALL.SerializeToString()):
        assert required_scope(INSPECTOR, "SetMode", request) is Scope.CLOSE_ALL
    # Without the request: the method's scope. The gateway checks it once the request is read.
    assert required_scope(INSPECTOR, "SetMode") is Scope.TRADE
    assert depends_on_request(INSPECTOR, "SetMode") and not depends_on_request(INSPECTOR, "SubmitIntent")


def test_no_other_scope_carries_close_all() -> None:
    everything_else = Principal("ops", frozenset({Scope.READ, Scope.TRADE, Scope.ADMIN}))
    check_scope(everything_else, INSPECTOR, "SetMode", rk.SetModeRequest(mode=rk.MODE_STAND_DOWN))
    with pytest.raises(PermissionDenied) as refused:
        check_scope(everything_else, INSPECTOR, "SetMode", CLOSE_ALL.SerializeToString())
    message = str(refused.value)
    assert "Inspector/SetMode with mode MODE_CLOSE_ALL needs the 'close_all' scope" in message
    assert "API key 'ops' has admin, read, trade" in message and "--scope close_all" in message
    # The permission alone is enough for the button, and for nothing else.
    button = Principal("kill-switch", frozenset({Scope.CLOSE_ALL}))
    check_scope(button, INSPECTOR, "SetMode", CLOSE_ALL)
    with pytest.raises(PermissionDenied, match="SetMode needs the 'trade' scope"):
        check_scope(button, INSPECTOR, "SetMode", rk.SetModeRequest(mode=rk.MODE_RESUME))
    with pytest.raises(PermissionDenied, match="'trade' scope"):
        check_scope(button, INSPECTOR, "SubmitIntent")


def test_a_request_that_cannot_be_read_counts_as_the_graver_form() -> None:
    assert required_scope(INSPECTOR, "SetMode", b"\xff\xff\xff") is Scope.CLOSE_ALL
    # Last value wins, as the service reads it: STAND_DOWN then CLOSE_ALL is CLOSE_ALL.
    twice = rk.SetModeRequest(mode=rk.MODE_STAND_DOWN).SerializeToString() + CLOSE_ALL.SerializeToString()
    assert required_scope(INSPECTOR, "SetMode", twice) is Scope.CLOSE_ALL


def test_every_request_rule_is_of_a_classified_method_and_its_request_type() -> None:
    for name, rule in REQUEST_SCOPES.items():
        assert name in METHOD_SCOPES and rule.scope is not METHOD_SCOPES[name]
        service, _, method = name.partition("/")
        descriptor = descriptor_pool.Default().FindServiceByName(service).methods_by_name[method]
        assert descriptor.input_type.full_name == rule.request.DESCRIPTOR.full_name


def test_the_docs_table_lists_every_method_under_its_scope() -> None:
    docs = (Path(__file__).resolve().parents[2] / "docs" / "gateway.md").read_text()
    rows = {
        scope: next(line for line in docs.splitlines() if line.startswith(f"| `{scope}` |"))
        for scope in Scope
    }
    missing = [
        f"{method} ({scope})"
        for method, scope in METHOD_SCOPES.items()
        if method.startswith("trademesh.") and f"`{method.partition('/')[2]}`" not in rows[scope]
    ]
    missing += [
        f"{method} ({rule.scope})"
        for method, rule in REQUEST_SCOPES.items()
        if f"`{method.partition('/')[2]}`" not in rows[rule.scope]
    ]
    assert missing == [], f"docs/gateway.md, Scopes: add {missing}"
