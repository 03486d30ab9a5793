"""The edge's request limits and bounded error answers (issue 12, item 2)."""

from __future__ import annotations

from core.errors import FieldViolation, InvalidArgument, NotFound
from core.rpc.limits import MAX_ITEMS, MAX_STRING_CHARS, violations_of
from core.rpc.status import MAX_MESSAGE_CHARS, MAX_VIOLATIONS, to_status
from trademesh.admin.v1 import admin_pb2 as admin
from trademesh.marketdata.v1 import marketdata_pb2 as md
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
