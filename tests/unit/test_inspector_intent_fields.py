"""Every field of an intent is checked for its meaning, not only its type (issue 37, item 20):
trademesh.core.inspector.convert.intent_from_pb (the API's and the bus's way in) names each bad field, with
the rules of trademesh.core.advisor.engine.intent.intent_violations; a journal's intents are read back
without the rules added since (a replay takes what was taken then)."""

from __future__ import annotations

from typing import Any

import pytest

from trademesh.advisor.v1 import messages_pb2 as am
from trademesh.common.v1 import common_pb2 as common
from trademesh.core.domain.model import TimeInForce
from trademesh.core.inspector.convert import decode_intent, intent_from_pb
from trademesh.core.platform.errors import InvalidArgument
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf

NOW = 1_767_300_000_000_000_000


def message(**fields: Any) -> am.Intent:
    """A limit buy at 100 with its stop below and its target above (fields override)."""
    intent = am.Intent(
        intent_id="i-1", decision_id="d-1", signal_id="s-1", strategy_id="trend", venue="sim",
        symbol="BTC/USDT", side=common.SIDE_BUY, size="0.5", entry_type=tf.ORDER_TYPE_LIMIT,
        entry_price="100", stop_loss="95", take_profit="110", time_in_force=tf.TIME_IN_FORCE_GTC,
        expires_at_ns=NOW + 60 * 10**9, conviction="0.7", ts_intent_ns=NOW, risk_amount="500",
        ts_signal_ns=NOW - 10**9,
    )  # fmt: skip
    for name, value in fields.items():
        setattr(intent, name, value)
    return intent


SELL = {"side": common.SIDE_SELL, "stop_loss": "105", "take_profit": "90"}
MARKET = {"entry_type": tf.ORDER_TYPE_MARKET, "time_in_force": tf.TIME_IN_FORCE_IOC}

# (what is wrong, the fields given, the field named)
BAD: list[tuple[str, dict[str, Any], str]] = [
    ("no id", {"intent_id": ""}, "intent.intent_id"),
    ("a long id", {"intent_id": "i" * 129}, "intent.intent_id"),
    ("a long decision id", {"decision_id": "d" * 129}, "intent.decision_id"),
    ("a long signal id", {"signal_id": "s" * 129}, "intent.signal_id"),
    ("no strategy", {"strategy_id": ""}, "intent.strategy_id"),
    ("a long strategy", {"strategy_id": "t" * 129}, "intent.strategy_id"),
    ("no venue", {"venue": ""}, "intent.venue"),
    ("not a venue name", {"venue": "Bad Venue!"}, "intent.venue"),
    ("no symbol", {"symbol": ""}, "intent.symbol"),
    ("a long symbol", {"symbol": "X" * 129}, "intent.symbol"),
    ("no side", {"side": common.SIDE_UNSPECIFIED}, "intent.side"),
    ("a side out of range", {"side": 99}, "intent.side"),
    ("a size of 0", {"size": "0"}, "intent.size"),
    ("a negative size", {"size": "-1"}, "intent.size"),
    ("a size in exponent form", {"size": "1e3"}, "intent.size"),
    ("a size past any venue", {"size": "1" + "0" * 16}, "intent.size"),
    ("no entry type", {"entry_type": tf.ORDER_TYPE_UNSPECIFIED}, "intent.entry_type"),
    ("a limit without its price", {"entry_price": ""}, "intent.entry_price"),
    ("a price of 0", {"entry_price": "0"}, "intent.entry_price"),
    ("a long's stop above its entry", {"stop_loss": "101"}, "intent.stop_loss"),
    ("a long's stop at its entry", {"stop_loss": "100"}, "intent.stop_loss"),
    ("a long's target below its entry", {"take_profit": "99"}, "intent.take_profit"),
    ("a short's stop below its entry", {**SELL, "stop_loss": "99"}, "intent.stop_loss"),
    ("a short's target above its entry", {**SELL, "take_profit": "101"}, "intent.take_profit"),
    ("a market long's stop above its reference", {**MARKET, "stop_loss": "101"}, "intent.stop_loss"),
    (
        "a market long without a reference, its target below its stop",
        {**MARKET, "entry_price": "", "stop_loss": "110", "take_profit": "95"},
        "intent.take_profit",
    ),
    ("a stop of 0", {"stop_loss": "0"}, "intent.stop_loss"),
    ("a time in force out of range", {"time_in_force": 99}, "intent.time_in_force"),
    ("a market order that rests", {**MARKET, "time_in_force": tf.TIME_IN_FORCE_GTC}, "intent.time_in_force"),
    ("no expiry", {"expires_at_ns": 0}, "intent.expires_at_ns"),
    ("an expiry before it was made", {"expires_at_ns": NOW - 1}, "intent.expires_at_ns"),
    ("made before 1970", {"ts_intent_ns": -1, "expires_at_ns": NOW}, "intent.ts_intent_ns"),
    ("a signal before 1970", {"ts_signal_ns": -1}, "intent.ts_signal_ns"),
    ("a conviction of NaN", {"conviction": "NaN"}, "intent.conviction"),
    ("a conviction above 1", {"conviction": "1.5"}, "intent.conviction"),
    ("a negative conviction", {"conviction": "-0.1"}, "intent.conviction"),
    ("a risk amount in exponent form", {"risk_amount": "-1e30"}, "intent.risk_amount"),
    ("a negative risk amount", {"risk_amount": "-" + "1" * 31}, "intent.risk_amount"),
    ("a reduce-only intent with a stop", {"reduce_only": True, "take_profit": ""}, "intent.stop_loss"),
]


@pytest.mark.parametrize(("given", "field"), [(g, f) for _, g, f in BAD], ids=[w for w, _, _ in BAD])
def test_each_bad_field_is_named(given: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        intent_from_pb(message(**given))
    assert [v.field for v in caught.value.violations] == [field]


def test_a_good_intent_passes_and_every_bad_field_is_named_at_once() -> None:
    good = intent_from_pb(message())
    assert (good.size, good.conviction, good.time_in_force) == (good.size, 0.7, TimeInForce.GTC)
    assert intent_from_pb(message(**SELL)).stop_loss is not None
    assert intent_from_pb(message(**MARKET, entry_price="")).entry_price is None  # no reference: none checked
    with pytest.raises(InvalidArgument) as caught:
        intent_from_pb(message(stop_loss="101", time_in_force=99, conviction="NaN", risk_amount="-1"))
    fields = [v.field for v in caught.value.violations]
    assert sorted(fields) == [
        "intent.conviction",
        "intent.risk_amount",
        "intent.stop_loss",
        "intent.time_in_force",
    ]


def test_a_journaled_intent_reads_back_without_the_rules_added_since() -> None:
    journaled = message(stop_loss="101", conviction="1.5")  # taken before these rules
    assert decode_intent(journaled).stop_loss is not None
