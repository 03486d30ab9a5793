"""The edge's request limits and bounded error answers (issue 12, item 2); each request string
field's limit fits its use (issue 37, item 5)."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterator

from google.protobuf.descriptor import Descriptor, FieldDescriptor

import trademesh
from trademesh.admin.v1 import admin_pb2 as admin
from trademesh.core.detector.config import EXAMPLES_DIR
from trademesh.core.inspector.config import DEFAULT_POLICIES
from trademesh.core.platform.errors import FieldViolation, InvalidArgument, NotFound
from trademesh.core.platform.rpc.limits import (
    LONG_STRINGS,
    MAX_ITEMS,
    MAX_STRING_CHARS,
    string_limit,
    violations_of,
)
from trademesh.core.platform.rpc.status import MAX_MESSAGE_CHARS, MAX_VIOLATIONS, to_status
from trademesh.marketdata.v1 import marketdata_pb2 as md
from trademesh.patch.v1 import patch_pb2 as pt
from trademesh.risk.v1 import inspector_pb2 as rk
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf


def test_a_string_over_the_limit_is_named_by_its_path() -> None:
    long = "x" * (MAX_STRING_CHARS + 1)
    request = md.SubscribeRequest(symbols=["BTC/USDT", long])
    assert violations_of(request) == [
        FieldViolation("symbols[1]", f"is {MAX_STRING_CHARS + 1} characters long; at most {MAX_STRING_CHARS}")
    ]
    assert (
        violations_of(tf.PlaceOrderRequest(symbol="BTC/USDT", client_order_id="a" * MAX_STRING_CHARS)) == []
    )


def test_strings_inside_nested_messages_are_checked_too() -> None:
    request = admin.AddSubscriptionsRequest(
        subscriptions=[admin.Subscription(symbol="y" * 300, channel=md.CHANNEL_TRADES)]
    )
    (violation,) = violations_of(request)
    assert violation.field == "subscriptions[0].symbol"


def test_a_list_over_the_limit_is_one_violation_not_one_per_item() -> None:
    request = md.SubscribeRequest(symbols=["BTC/USDT"] * (MAX_ITEMS + 1))
    assert violations_of(request) == [
        FieldViolation("symbols", f"holds {MAX_ITEMS + 1} values; at most {MAX_ITEMS}")
    ]


def test_an_answer_keeps_its_trailers_small_however_much_was_wrong() -> None:
    many = InvalidArgument([FieldViolation(f"symbols[{i}]", "z" * 10_000) for i in range(500)])
    status = to_status(many)
    assert len(status.details) < MAX_MESSAGE_CHARS and "(500" not in status.details
    trailer = dict(status.trailing_metadata)["grpc-status-details-bin"]
    assert len(trailer) < 8 * 1024
    assert len(to_status(NotFound("order " + "q" * 1_000_000 + " not found")).details) <= MAX_MESSAGE_CHARS
    assert MAX_VIOLATIONS == 10


# Every request string field's name, decided one by one: these hold a name, an id, a symbol, a
# decimal, an address or a choice (far below MAX_STRING_CHARS). A field holding a document or
# free text has its own limit in LONG_STRINGS instead. A new field name fails the walk below
# until its limit is decided here or there.
SHORT_FIELDS = frozenset(
    {
        "account_id",
        "address",
        "asset",
        "bars",
        "client_order_id",
        "new_client_order_id",
        "conviction",
        "decision_id",
        "entry_price",
        "from_module",
        "from_port",
        "id",
        "instance",
        "instance_id",
        "intent_id",
        "key",
        "latency",
        "leverage",
        "llm",
        "max_notional_share",
        "method",
        "module_id",
        "name",
        "order_id",
        "order_latency_ms",
        "page_token",
        "patch_id",
        "patch_ids",
        "policy",
        "ports",
        "price",
        "regime",
        "report_latency_ms",
        "risk_amount",
        "run_id",
        "sample_s",
        "score",
        "screen",
        "screens",
        "service",
        "services",
        "session_id",
        "signal_id",
        "size",
        "starting_equity",
        "stop_loss",
        "strategies",
        "strategy_id",
        "subscription_id",
        "symbol",
        "symbols",
        "take_profit",
        "target",
        "text_value",
        "threshold",
        "timeframe",
        "to_module",
        "to_port",
        "trace_id",
        "trigger_price",
        "type",
        "value",
        "venue",
        "venues",
        "version",
        "weight",
    }
)
# Fields whose name is free text elsewhere, decided short one by one: a venue's cancel reason is
# one line within the edge's limit (trademesh.venues.runtime.validate.MAX_REASON_CHARS; the inspector cuts
# an operator's longer one to fit, trademesh.core.inspector.convert.venue_reason).
SHORT_BY_FULL_NAME = frozenset(
    {
        "trademesh.tradeflow.v1.CancelOrderRequest.reason",
        "trademesh.tradeflow.v1.CancelAllOrdersRequest.reason",
        "trademesh.tradeflow.v1.AmendOrderRequest.reason",
        # A text the log lines are searched for (a word, an id): one line.
        "trademesh.logs.v1.TailRequest.text",
        # A line id to resume after ("1764200000000-0": trademesh.gateway.logs.query checks its form).
        "trademesh.logs.v1.TailRequest.after_id",
        # A Supervisor's proposal id (its book and sequence), and why an operator approves or
        # rejects one: one line (trademesh.core.supervisor.api checks both, a reason at 500 characters,
        # under the edge's).
        "trademesh.supervisor.v1.ApproveRequest.proposal_id",
        "trademesh.supervisor.v1.ApproveRequest.reason",
        "trademesh.supervisor.v1.RejectRequest.proposal_id",
        "trademesh.supervisor.v1.RejectRequest.reason",
    }
)


def _request_strings(message: Descriptor, seen: frozenset[str]) -> Iterator[FieldDescriptor]:
    for field in message.fields:
        if field.type == FieldDescriptor.TYPE_STRING:
            yield field
        elif field.message_type is not None and field.message_type.full_name not in seen:
            yield from _request_strings(field.message_type, seen | {field.message_type.full_name})


def _every_request_string() -> list[FieldDescriptor]:
    found: dict[str, FieldDescriptor] = {}
    for module in pkgutil.walk_packages(trademesh.__path__, "trademesh."):
        if module.name.endswith("_pb2"):
            for service in importlib.import_module(module.name).DESCRIPTOR.services_by_name.values():
                for method in service.methods:
                    for field in _request_strings(
                        method.input_type, frozenset({method.input_type.full_name})
                    ):
                        found[field.full_name] = field
    return list(found.values())


def test_every_request_string_field_has_a_decided_limit() -> None:
    fields = _every_request_string()
    assert len(fields) > 100  # the walk reached every service
    undecided = [
        f.full_name
        for f in fields
        if f.full_name not in SHORT_BY_FULL_NAME | LONG_STRINGS.keys() and f.name not in SHORT_FIELDS
    ]
    assert undecided == [], "decide each one's limit: SHORT_FIELDS here, or LONG_STRINGS"
    names = {f.full_name for f in fields}
    assert set(LONG_STRINGS) <= names  # no limit for a field that is gone
    assert all(LONG_STRINGS[f] > MAX_STRING_CHARS for f in LONG_STRINGS)


def test_the_shipped_policy_file_and_strategies_fit_their_fields() -> None:
    policies = DEFAULT_POLICIES.read_text()
    assert len(policies) > MAX_STRING_CHARS  # the blanket cap refused it
    assert violations_of(rk.UpdatePoliciesRequest(toml=policies, reason="r" * 1000)) == []
    for strategy in sorted(EXAMPLES_DIR.glob("*.toml")):
        assert (
            violations_of(pt.CreatePatchRequest(strategy_toml=strategy.read_text(), description="d" * 4000))
            == []
        )
    over = rk.UpdatePoliciesRequest(toml="#" * (64 * 1024 + 1), reason="r" * 1025)
    assert [v.field for v in violations_of(over)] == ["toml", "reason"]
    field = rk.UpdatePoliciesRequest.DESCRIPTOR.fields_by_name["toml"]
    assert string_limit(field) == 64 * 1024
