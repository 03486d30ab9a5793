"""What the replay stand-in makes up from frames (trademesh.venues.replay.synthesis) and how it counts
(tally)."""

from __future__ import annotations

import logging

import pytest

from trademesh.venues.replay.synthesis import MarketsSeen, decimals, split_joined, step
from trademesh.venues.replay.tally import Drop, ReplayTally


@pytest.mark.parametrize(
    ("native", "pair"),
    [
        ("BTCUSDT", ("BTC", "USDT")),
        ("ETHBTC", ("ETH", "BTC")),
        ("BTCFDUSD", ("BTC", "FDUSD")),  # the longest quote wins over USD
        ("SOLUSDC", ("SOL", "USDC")),
        ("btcusdt", ("BTC", "USDT")),
        ("USDT", None),  # nothing left for a base
        ("FOOBAR", None),  # no known quote at its end
    ],
)
def test_a_run_together_symbol_splits_before_the_longest_known_quote(
    native: str, pair: tuple[str, str] | None
) -> None:
    assert split_joined(native) == pair


def test_tick_and_lot_are_one_unit_of_the_last_decimal_place_written() -> None:
    seen = MarketsSeen()
    seen.see("BTCUSDT", [("91249.50", "0.102439"), ("91250", "1.5"), (91251.5, 10.0)])
    market = seen.markets["BTCUSDT"]
    assert (market.tick, market.lot) == ("0.01", "0.000001")
    assert (decimals("100"), decimals("1e-05"), decimals("not a number")) == (0, 5, None)
    assert (step(0), step(3)) == ("1", "0.001")


def test_a_market_without_prices_gets_the_documented_defaults() -> None:
    seen = MarketsSeen()
    seen.add("ETHUSDT")
    assert (seen.markets["ETHUSDT"].tick, seen.markets["ETHUSDT"].lot) == ("0.01", "0.00000001")


def test_the_summary_counts_every_frame_by_reason(caplog: pytest.LogCaptureFixture) -> None:
    tally = ReplayTally(total=10, served=5, control=2, reconnects=1)
    with caplog.at_level(logging.WARNING):
        tally.drop(Drop.OTHER_MARKET, '{"topic":"publicTrade.BTCUSDT"}')
        tally.drop(Drop.OTHER_MARKET)
        tally.drop(Drop.UNRECOGNIZED, '{"type":"notice"}')
        tally.synthesize("bybit instruments-info (spot)", "BTCUSDT")
        tally.synthesize("bybit instruments-info (spot)", "BTCUSDT")
        tally.refuse("api.bybit.com/v5/market/time")
    assert tally.summary() == (
        "replay summary: 5 of 10 captured frames served; 3 dropped (other-market 2, unrecognized 1); "
        "2 control frames answered by the stand-in; 1 reconnect; synthesized: bybit instruments-info (spot); "
        "REST refused: api.bybit.com/v5/market/time x1"
    )
    # The first frame of each reason, each made-up answer kind and each refused path: logged once.
    messages = [r.getMessage() for r in caplog.records]
    assert sum("(other-market)" in m for m in messages) == 1
    assert sum("synthesized bybit" in m for m in messages) == 1
    assert any('(unrecognized): {"type":"notice"}' in m for m in messages)


def test_a_replay_stopped_early_says_what_it_did_not_play() -> None:
    tally = ReplayTally(total=4, served=1, not_played=3)
    assert "3 not played (the replay was stopped)" in tally.summary()
    assert "synthesized: nothing; REST refused: none" in tally.summary()
