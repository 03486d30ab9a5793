"""trademesh.core.platform.rpc.auth: the mesh token, privileged methods and their credential, resolved per
method."""

from __future__ import annotations

import argparse

import pytest

from trademesh.admin.v1 import admin_pb2
from trademesh.core.platform.config.env import TOKEN, TRADE_TOKEN
from trademesh.core.platform.errors import InvalidArgument, PermissionDenied, Unauthenticated
from trademesh.core.platform.rpc.auth import BearerAuth, Privileged, bearer_token
from trademesh.core.platform.rpc.client import auth_metadata, trade_auth_metadata
from trademesh.core.platform.service.command import load_command, server_options
from trademesh.core.platform.service.registry import SERVICES
from trademesh.tradeflow.v1 import tradeflow_pb2
from trademesh.venues.command import TRADING

MESH = "mesh-secret-value"
TRADE = "trade-secret-value"
PLACE = "/pkg.Orders/Place"
READ = "/pkg.Orders/Read"
SPEC = Privileged(frozenset({PLACE}), "trading credential", "TEST_TRADE_VARIABLE", "only the tester trades")


def _bearer(token: str) -> list[tuple[str, str]]:
    return [("authorization", f"Bearer {token}")]


NOBODY: list[tuple[str, str]] = []


def _refusal(auth: BearerAuth, method: str, metadata: list[tuple[str, str]]) -> str:
    check = auth.for_method(method)
    assert check is not None
    with pytest.raises(PermissionDenied) as refused:
        check.check_metadata(metadata)
    return str(refused.value)


def _unauthenticated(auth: BearerAuth, method: str, metadata: list[tuple[str, str]]) -> None:
    check = auth.for_method(method)
    assert check is not None
    with pytest.raises(Unauthenticated):
        check.check_metadata(metadata)


def _allowed(auth: BearerAuth, method: str, metadata: list[tuple[str, str]]) -> None:
    check = auth.for_method(method)
    if check is not None:
        check.check_metadata(metadata)


def test_the_trade_token_alone_is_taken_on_a_privileged_method() -> None:
    auth = BearerAuth(MESH, SPEC, TRADE, "venue/sim")
    _allowed(auth, PLACE, _bearer(TRADE))
    message = _refusal(auth, PLACE, _bearer(MESH))
    assert message == "Place needs the trading credential (TEST_TRADE_VARIABLE): only the tester trades"
    for metadata in (NOBODY, _bearer("wrong"), _bearer(""), [("authorization", f"Basic {TRADE}")]):
        _unauthenticated(auth, PLACE, metadata)


def test_the_trade_token_is_good_for_every_other_method_too() -> None:
    auth = BearerAuth(MESH, SPEC, TRADE)
    _allowed(auth, READ, _bearer(MESH))
    _allowed(auth, READ, _bearer(TRADE))
    _unauthenticated(auth, READ, _bearer("wrong"))
    _unauthenticated(auth, READ, NOBODY)


def test_a_service_without_its_trade_token_refuses_privileged_methods_to_everyone() -> None:
    auth = BearerAuth(MESH, SPEC, None, "venue/sim")
    message = _refusal(auth, PLACE, _bearer(MESH))
    assert message == "Place is refused: venue/sim has no trading credential configured (TEST_TRADE_VARIABLE)"
    _unauthenticated(auth, PLACE, _bearer(TRADE))  # not a token this service knows
    _unauthenticated(auth, PLACE, NOBODY)
    _allowed(auth, READ, _bearer(MESH))
    _unauthenticated(auth, READ, _bearer(TRADE))


def test_with_mesh_auth_off_only_privileged_methods_need_the_trade_token() -> None:
    auth = BearerAuth(None, SPEC, TRADE)
    assert not auth.is_off
    assert auth.for_method(READ) is None
    _allowed(auth, PLACE, _bearer(TRADE))
    for metadata in (NOBODY, _bearer("anything"), _bearer(MESH)):
        assert "needs the trading credential" in _refusal(auth, PLACE, metadata)


def test_with_no_token_at_all_everything_is_open() -> None:
    auth = BearerAuth(None, SPEC, None)
    assert auth.is_off
    assert auth.for_method(PLACE) is None and auth.for_method(READ) is None


def test_without_privileged_methods_the_mesh_token_is_all_there_is() -> None:
    auth = BearerAuth(MESH)
    _allowed(auth, PLACE, _bearer(MESH))
    _unauthenticated(auth, PLACE, _bearer(TRADE))
    assert BearerAuth(None).is_off


def test_the_trade_token_must_differ_from_the_mesh_token() -> None:
    with pytest.raises(InvalidArgument) as error:
        BearerAuth(MESH, SPEC, MESH)
    assert "TEST_TRADE_VARIABLE" in str(error.value) and MESH not in str(error.value)


def test_messages_never_carry_a_token() -> None:
    auth = BearerAuth(MESH, SPEC, TRADE)
    for metadata in (_bearer(MESH), _bearer("wrong"), NOBODY):
        check = auth.for_method(PLACE)
        assert check is not None
        with pytest.raises((PermissionDenied, Unauthenticated)) as error:
            check.check_metadata(metadata)
        assert MESH not in str(error.value) and TRADE not in str(error.value)


def test_privileged_names_are_full_method_paths() -> None:
    for bad in ("PlaceOrder", "pkg.Svc/Method", "/pkg.Svc", "/pkg.Svc/a/b"):
        with pytest.raises(InvalidArgument):
            Privileged(frozenset({bad}), "c", "V", "w")


def test_bearer_token_reads_the_first_authorization_entry() -> None:
    assert bearer_token([("x", "y"), ("authorization", b"bearer  abc ")]) == b"abc"
    assert bearer_token([("authorization", "Basic abc"), ("authorization", "Bearer abc")]) is None
    assert bearer_token([]) is None


def test_the_venue_declares_the_order_rpcs_and_the_dead_man_switch() -> None:
    tradeflow = tradeflow_pb2.DESCRIPTOR.services_by_name["TradeFlow"]
    admin = admin_pb2.DESCRIPTOR.services_by_name["Admin"]
    # SetLeverage sets the margin the next order takes: the inspector's alone, as the orders are.
    orders = ("PlaceOrder", "AmendOrder", "CancelOrder", "CancelAllOrders", "SetLeverage")
    expected = {f"/{tradeflow.full_name}/{name}" for name in orders}
    expected.add(f"/{admin.full_name}/Heartbeat")
    assert TRADING.methods == expected
    assert TRADING.variable == TRADE_TOKEN == "TRADEMESH_TRADE_TOKEN"


def _options(name: str, argv: list[str]) -> tuple[str | None, Privileged | None]:
    from trademesh.core.cli import build_parser

    args: argparse.Namespace = build_parser().parse_args([name, *argv])
    options = server_options(SERVICES[name], load_command(SERVICES[name]), args, name)
    return options.privileged_token, options.privileged


def test_only_a_service_with_privileged_methods_reads_the_trade_token(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(TOKEN, MESH)
    monkeypatch.setenv(TRADE_TOKEN, TRADE)
    assert _options("venue", ["sim"]) == (TRADE, TRADING)
    assert _options("ingest", []) == (None, None)
    monkeypatch.setenv(TRADE_TOKEN, "")
    assert _options("venue", ["sim"]) == (None, TRADING)


def test_server_options_never_show_a_token(monkeypatch: pytest.MonkeyPatch) -> None:
    from trademesh.core.cli import build_parser

    monkeypatch.setenv(TOKEN, MESH)
    monkeypatch.setenv(TRADE_TOKEN, TRADE)
    args = build_parser().parse_args(["venue", "sim"])
    text = repr(server_options(SERVICES["venue"], load_command(SERVICES["venue"]), args, "venue/sim"))
    assert MESH not in text and TRADE not in text


def test_the_client_sends_either_credential(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TOKEN, MESH)
    monkeypatch.delenv(TRADE_TOKEN, raising=False)
    assert auth_metadata() == (("authorization", f"Bearer {MESH}"),)
    assert trade_auth_metadata() == ()
    monkeypatch.setenv(TRADE_TOKEN, TRADE)
    assert trade_auth_metadata() == (("authorization", f"Bearer {TRADE}"),)


DRAIN = "/pkg.Orders/Drain"
WHEN_SET = Privileged(
    frozenset({PLACE}), "trading credential", "TEST_TRADE_VARIABLE", "only the tester trades",
    when_set=frozenset({(DRAIN, "cancel_all")}),
)  # fmt: skip


class _DrainRequest:
    def __init__(self, cancel_all: bool) -> None:
        self.cancel_all = cancel_all


def test_a_method_is_privileged_only_when_its_request_sets_the_field() -> None:
    auth = BearerAuth(MESH, WHEN_SET, TRADE, "venue/sim")
    check = auth.for_method(DRAIN)
    assert check is not None
    for token in (MESH, TRADE):  # a plain call: any good caller
        check.check_metadata(_bearer(token))
        check.check_request(_bearer(token), _DrainRequest(False))
    check.check_request(_bearer(TRADE), _DrainRequest(True))
    with pytest.raises(PermissionDenied) as refused:
        check.check_request(_bearer(MESH), _DrainRequest(True))
    assert str(refused.value) == (
        "Drain with cancel_all needs the trading credential (TEST_TRADE_VARIABLE): only the tester trades"
    )
    with pytest.raises(Unauthenticated):
        check.check_metadata(_bearer("wrong"))


def test_with_mesh_auth_off_the_field_still_needs_the_trade_token() -> None:
    check = BearerAuth(None, WHEN_SET, TRADE).for_method(DRAIN)
    assert check is not None
    check.check_metadata(NOBODY)
    check.check_request(NOBODY, _DrainRequest(False))
    with pytest.raises(PermissionDenied):
        check.check_request(NOBODY, _DrainRequest(True))
    without = BearerAuth(MESH, WHEN_SET, None, "venue/sim").for_method(DRAIN)
    assert without is not None
    with pytest.raises(PermissionDenied) as refused:
        without.check_request(_bearer(MESH), _DrainRequest(True))
    assert "has no trading credential configured" in str(refused.value)
