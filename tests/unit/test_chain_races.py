"""The chain sessions' race detector (tests/integration/chain_races.py) on the shipped sessions'
journals (each holds the race its README names, the first none), and on the first one's with a
race put in by hand."""

from __future__ import annotations

from pathlib import Path

from tests.integration.chain_races import (
    AnswerRace,
    CancelRace,
    WordRace,
    answer_races,
    cancel_races,
    fixture_journal,
    word_races,
)
from trademesh.common.v1 import common_pb2 as common
from trademesh.risk.v1 import journal_pb2 as jr
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
# In the first shipped session: the ETH market entry, answered (PARTIALLY_FILLED, 1.0676) before
# its fills were heard; its fifth fill, made 34 ms after that answer's moment.
ETH_ENTRY = "13edd9a4899456dd8d2c8b3734429bb5"
ETH_ANSWER = 50  # its PlaceOrder answer's entry
ETH_FIFTH_FILL = (1795704769071508667, 1795704769079398562)  # the venue's time, heard
# The BTC stop the core resized (an Amend) on the second BTC entry's FILLED answer.
BTC_STOP = "98f13a2e8b5f52bb81f60075c9f04ade"
BTC_ANSWER = 115  # the entry's answer: its output asks the resize
RESIZE_ASKED = 1795704779008969843


def _shipped() -> list[jr.JournalEntry]:
    return fixture_journal(FIXTURES / "chain-parity")


def test_the_first_shipped_session_holds_no_race() -> None:
    journal = _shipped()
    assert len(journal) == 141
    assert cancel_races(journal) == []
    assert answer_races(journal) == []
    assert word_races(journal) == []


def test_the_answer_session_holds_its_entrys_answer_late_by_its_last_fill() -> None:
    journal = fixture_journal(FIXTURES / "chain-parity-answer")
    assert cancel_races(journal) == [] and word_races(journal) == []
    assert answer_races(journal) == [
        AnswerRace("18b937ba38ef56dbab5fec879d2d8bf6", "ETH/USDT", 1795713596030431749, 1795713596168981728,
                   "2.2805", 1795713596057467514, 1795713596175875780)
    ]  # fmt: skip


def test_the_target_session_holds_a_take_profit_filled_as_its_cancel_was_asked() -> None:
    # Recorded with the sim before its reduce-only rule (the parity tests no longer run on it:
    # chain_mesh.RETIRED); its journal still holds the race.
    journal = fixture_journal(FIXTURES / "chain-parity-target")
    [race] = cancel_races(journal)
    assert race == CancelRace("3386dcb0f7595b71a2a7fab0ab342c03", "BTC/USDT", "take_profit", "cancel",
                              1795715033176487159, 1795715033168829761, 1795715033181817773)  # fmt: skip
    assert not race.in_flight  # the buy met it 7.7 ms before the stop's fill, heard, had it cancelled
    assert answer_races(journal) == [] and word_races(journal) == []


def test_the_word_session_holds_a_stop_placed_on_the_answer_filled_before_the_fills_were_heard() -> None:
    journal = fixture_journal(FIXTURES / "chain-parity-word")
    assert word_races(journal) == [
        WordRace("0ac302a280e15a2694d1e79d6414b92d", "270a8727e2055cd78916d050ec6e31f4", "BTC/USDT",
                 1795715196062353947, 1795715196251093686, 1795715196272981131)
    ]  # fmt: skip
    assert cancel_races(journal) == [] and answer_races(journal) == []


def test_an_answer_heard_after_a_fill_it_does_not_hold_is_a_race() -> None:
    journal = _shipped()
    answer = journal[ETH_ANSWER]
    assert answer.order_update.client_order_id == ETH_ENTRY
    answer.now_ns = ETH_FIFTH_FILL[0] + 1_000  # the answer came later: after its fifth fill was made
    assert answer_races(journal) == [
        AnswerRace(ETH_ENTRY, "ETH/USDT", 1795704769037136426, ETH_FIFTH_FILL[0] + 1_000, "1.0676",
                   *ETH_FIFTH_FILL)
    ]  # fmt: skip


def _stop_fill(made_ns: int, heard_ns: int) -> jr.JournalEntry:
    fill = tf.Fill(
        fill_id="stop-fill", order_id="1", client_order_id=BTC_STOP, symbol="BTC/USDT",
        side=common.SIDE_SELL, price="64990", size="0.0121", fee="0", fee_asset="USDT",
        liquidity=tf.LIQUIDITY_TAKER, ts_event_ns=made_ns,
    )  # fmt: skip
    return jr.JournalEntry(now_ns=heard_ns, fill=jr.JournalFill(venue="sim", fill=fill))


def _of_the_stop(races: list[CancelRace]) -> list[CancelRace]:
    """The races of BTC_STOP (its fill put in moves the plans after it: the new stop's own fill,
    recorded, now comes after the core cancelled it)."""
    return [r for r in races if r.client_order_id == BTC_STOP]


def test_a_stop_filling_while_its_resize_is_on_its_way_is_a_race_in_flight() -> None:
    journal = _shipped()
    made, heard = RESIZE_ASKED + 2_000_000, RESIZE_ASKED + 9_000_000
    journal.insert(BTC_ANSWER + 1, _stop_fill(made, heard))
    [race] = _of_the_stop(cancel_races(journal))
    assert race == CancelRace(BTC_STOP, "BTC/USDT", "stop_loss", "resize", RESIZE_ASKED, made, heard)
    assert race.in_flight


def test_a_stop_triggered_before_its_resize_but_heard_after_is_a_race_crossed() -> None:
    journal = _shipped()
    made, heard = RESIZE_ASKED - 2_000_000, RESIZE_ASKED + 9_000_000
    journal.insert(BTC_ANSWER + 1, _stop_fill(made, heard))
    [race] = _of_the_stop(cancel_races(journal))
    assert (race.how, race.asked_ns, race.filled_ns) == ("resize", RESIZE_ASKED, made)
    assert not race.in_flight


def test_a_stop_fill_heard_before_any_cancel_is_no_race() -> None:
    journal = _shipped()
    journal.insert(BTC_ANSWER, _stop_fill(RESIZE_ASKED - 3_000_000, RESIZE_ASKED - 1_000_000))
    assert cancel_races(journal) == []
