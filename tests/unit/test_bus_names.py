"""Bus stream names (trademesh.core.platform.bus.names): one rule each, and the parser that reads them
back."""

from __future__ import annotations

import fnmatch

import pytest

from trademesh.core.domain.model import TIMEFRAME_LABELS, Channel, Timeframe
from trademesh.core.platform.bus.names import (
    BAR_STREAMS,
    INSPECTOR_JOURNALS,
    MARKET_STREAMS,
    bars_stream,
    journal_stream,
    market_pattern,
    market_stream,
    parse_journal_stream,
    parse_market_stream,
)
from trademesh.core.platform.errors import InvalidArgument


@pytest.mark.parametrize("channel", list(Channel))
def test_a_market_stream_parses_back_and_matches_its_patterns(channel: Channel) -> None:
    stream = market_stream("okx-swap", channel)
    assert parse_market_stream(stream) == ("okx-swap", channel)
    assert fnmatch.fnmatchcase(stream, MARKET_STREAMS)
    assert fnmatch.fnmatchcase(stream, market_pattern(channel))
    assert not fnmatch.fnmatchcase(stream, BAR_STREAMS)


@pytest.mark.parametrize(
    "stream",
    [
        "bars.{sim}.1m",
        "dlq.md.{sim}.trades",
        "md.{sim}.orders",
        "md.{}.trades",
        "md.sim.trades",
        "md.{Sim}.book",
        "md",
    ],
)
def test_other_streams_are_not_market_streams(stream: str) -> None:
    assert parse_market_stream(stream) is None


def test_bar_streams_are_named_by_the_timeframe_label_and_tagged_with_their_trade_stream() -> None:
    source = market_stream("sim", Channel.TRADES)
    assert source == "md.{sim}.trades"
    assert [bars_stream(tf, source) for tf in Timeframe] == [
        f"bars.{{sim}}.{label}" for label in TIMEFRAME_LABELS
    ]
    assert TIMEFRAME_LABELS == ("1s", "1m", "5m", "15m", "1h", "4h", "1d", "1w")
    assert all(fnmatch.fnmatchcase(bars_stream(tf, source), BAR_STREAMS) for tf in Timeframe)
    assert not fnmatch.fnmatchcase(bars_stream(Timeframe.M1, source), MARKET_STREAMS)


def test_a_label_reads_back_and_an_unknown_one_names_the_known_ones() -> None:
    assert all(Timeframe.from_label(tf.label) is tf for tf in Timeframe)
    with pytest.raises(InvalidArgument, match=r"'7m' is not a timeframe; known: 1s, 1m, 5m"):
        Timeframe.from_label("7m")


def test_a_venue_name_that_is_not_a_stream_name_is_refused() -> None:
    with pytest.raises(InvalidArgument, match="is not a venue name"):
        market_stream("Bad.Name", Channel.TRADES)


def test_an_inspectors_journal_stream_parses_back_to_its_instance_and_matches_the_pattern() -> None:
    stream = journal_stream("main-1")
    assert parse_journal_stream(stream) == "main-1"
    assert fnmatch.fnmatchcase(stream, INSPECTOR_JOURNALS)
    assert [parse_journal_stream(s) for s in ("inspector.journal.", "exec.sim", "risk")] == [None] * 3
