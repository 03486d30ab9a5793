"""A venue account on the bus (docs/bus.md, "Accounts"): ingest's follower publishes each of the
venue's StreamAccount answers as it came (a snapshot, then changes), the whole account again after
the bus lost entries, a venue's missing time stamped with ingest's; the recorder's rows keep each
balance and position, money as the wire's decimal strings."""

from __future__ import annotations

import pytest

from trademesh.bus.v1 import bus_pb2 as bus
from trademesh.core.ingest.account import AccountFollower
from trademesh.core.ingest.dial import VenueDial
from trademesh.core.platform.bus.codec import decode, encode_account
from trademesh.core.platform.bus.names import account_stream, parse_account_stream
from trademesh.core.platform.config.mesh import VenueLink
from trademesh.core.platform.errors import Corrupt
from trademesh.core.recorder.rows import rows_of
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf


def test_the_account_stream_is_in_the_venues_slot() -> None:
    assert account_stream("sim") == "account.{sim}"
    assert parse_account_stream("account.{sim}") == "sim"
    assert parse_account_stream("exec.{sim}") is None


async def test_the_follower_publishes_each_answer_and_the_whole_account_after_a_bus_loss() -> None:
    published: list[bus.AccountSnapshot] = []

    async def publish(stream: str, envelope: bytes) -> None:
        assert stream == "account.{sim}"
        published.append(decode({b"d": envelope}).account)

    link = VenueLink("sim", "127.0.0.1:1")  # never dialled: take() is what a stream's answers go to
    follower = AccountFollower(VenueDial.of(link, ()), publish, "ingest/test", clock=lambda: 99)
    usdt = tf.Balance(asset="USDT", free="100", locked="0", total="100")
    await follower.take(tf.StreamAccountResponse(snapshot=True, balances=[usdt], as_of_ns=5))
    btc = tf.Balance(asset="BTC", free="0.1", locked="0", total="0.1")
    await follower.take(tf.StreamAccountResponse(balances=[btc], as_of_ns=0))  # no venue time
    assert [(e.snapshot, e.as_of_ns, [b.asset for b in e.balances]) for e in published] == [
        (True, 5, ["USDT"]),
        (False, 99, ["BTC"]),
    ]
    follower.mark_bus_loss(0)
    short = tf.Position(symbol="BTC/USDT:USDT", size="-1", entry_price="65000", realized_pnl="0")
    await follower.take(tf.StreamAccountResponse(positions=[short], as_of_ns=7))
    whole = published[-1]
    assert whole.snapshot and whole.as_of_ns == 7
    assert [b.asset for b in whole.balances] == ["BTC", "USDT"]
    assert [p.symbol for p in whole.positions] == ["BTC/USDT:USDT"]
    await follower.take(tf.StreamAccountResponse(positions=[short], as_of_ns=8))
    assert not published[-1].snapshot, "once: then changes again"


def test_the_recorder_makes_a_row_per_balance_and_position() -> None:
    account = bus.AccountSnapshot(
        venue="sim",
        snapshot=True,
        balances=[tf.Balance(asset="USDT", free="90.5", locked="9.5", total="100")],
        positions=[tf.Position(symbol="BTC/USDT:USDT", size="-0.5", entry_price="65000.1", realized_pnl="")],
        as_of_ns=11,
    )
    envelope = decode({b"d": encode_account("ingest/test", account, now_ns=12)})
    rows = rows_of([("1-0", envelope)]).account_states
    assert rows == [
        ("sim", "balance", "USDT", 11, True, "90.5", "9.5", "100", "", "", "", 12),
        ("sim", "position", "BTC/USDT:USDT", 11, True, "", "", "", "-0.5", "65000.1", "", 12),
    ]
    bad = bus.AccountSnapshot(venue="sim", balances=[tf.Balance(asset="USDT")], as_of_ns=0)
    with pytest.raises(Corrupt, match="without its venue or time"):
        rows_of([("2-0", decode({b"d": encode_account("ingest/test", bad)}))])
