"""SubmitIntent answers with the venue's latest word on the order (trademesh.core.inspector.runtime): an
update of the execution stream that comes after the PlaceOrder answer it preceded at the venue
does not take the answer back (a marketable order answered FILLED read back as OPEN)."""

from __future__ import annotations

from trademesh.core.inspector.runtime import _says_more
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf


def _order(status: tf.OrderStatus.ValueType, filled: str, at: int) -> tf.Order:
    return tf.Order(client_order_id="c", status=status, filled_size=filled, updated_ns=at)


def test_an_older_or_lesser_update_does_not_replace_a_later_answer() -> None:
    filled = _order(tf.ORDER_STATUS_FILLED, "0.001", 100)
    assert _says_more(filled, _order(tf.ORDER_STATUS_OPEN, "0", 100))  # the same moment, less said
    assert _says_more(filled, _order(tf.ORDER_STATUS_OPEN, "0", 90))  # earlier at the venue
    assert not _says_more(_order(tf.ORDER_STATUS_OPEN, "0", 90), filled)  # the later one replaces
    assert not _says_more(filled, _order(tf.ORDER_STATUS_FILLED, "0.001", 100))  # the same: taken
