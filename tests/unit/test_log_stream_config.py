"""LogHub's switches (TRADEMESH_LOG_STREAM, TRADEMESH_LOG_STREAM_MAXLEN) and Tail's filters."""

from __future__ import annotations

import re

import pytest

from trademesh.core.platform.errors import InvalidArgument
from trademesh.core.platform.logs.setup import chain_trace_id
from trademesh.core.platform.logs.stream import (
    LOG_STREAM,
    LOG_STREAM_MAXLEN,
    LogEntry,
    StreamSettings,
    stream_settings,
)
from trademesh.gateway.logs.query import as_line, query_of
from trademesh.logs.v1 import logs_pb2 as pb


def test_the_stream_follows_redis_url_unless_switched_off_or_elsewhere(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(LOG_STREAM, raising=False)
    monkeypatch.delenv(LOG_STREAM_MAXLEN, raising=False)
    monkeypatch.delenv("REDIS_URL", raising=False)
    assert stream_settings() is None
    monkeypatch.setenv("REDIS_URL", "redis://bus:6379/0")
    assert stream_settings() == StreamSettings("redis://bus:6379/0", 100_000)
    monkeypatch.setenv(LOG_STREAM, "off")
    assert stream_settings() is None
    monkeypatch.setenv(LOG_STREAM, "redis+cluster://a:7000,b:7000")
    monkeypatch.setenv(LOG_STREAM_MAXLEN, "5000")
    assert stream_settings() == StreamSettings("redis+cluster://a:7000,b:7000", 5000)


@pytest.mark.parametrize(
    ("variable", "value", "said"),
    [
        (LOG_STREAM, "yes", "is not a redis://"),
        (LOG_STREAM, "http://user:pw@x", "http://user:***@x is not a redis://"),
        (LOG_STREAM_MAXLEN, "12", "'12' is not a number of entries in 1000..100000000"),
        (LOG_STREAM_MAXLEN, "many", "'many' is not a number of entries"),
    ],
)
def test_a_bad_switch_is_refused_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, said: str
) -> None:
    monkeypatch.setenv("REDIS_URL", "redis://bus:6379/0")
    monkeypatch.setenv(variable, value)
    with pytest.raises(InvalidArgument) as error:
        stream_settings()
    [violation] = error.value.violations
    assert violation.field == variable and said in violation.description
    assert "pw" not in violation.description


def test_bad_filters_name_every_field() -> None:
    request = pb.TailRequest(min_level=7, backlog=1001, text="x" * 300)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument) as error:
        query_of(request)
    assert [v.field for v in error.value.violations] == ["min_level", "backlog", "text"]


def entry(level: str = "INFO", message: str = "Order placed", **fields: str) -> LogEntry:
    return LogEntry("1-0", 5, level, "venue", "sim", "h:1", "trademesh.venues.sim", message, fields)


def test_filters_match_level_and_above_fields_exactly_and_text_in_any_case() -> None:
    warning = query_of(pb.TailRequest(min_level=pb.LOG_LEVEL_WARNING))
    assert [warning.matches(entry(level)) for level in ("DEBUG", "INFO", "WARNING", "CRITICAL")] == [
        False,
        False,
        True,
        True,
    ]
    traced = query_of(pb.TailRequest(trace_id="t1", venue="sim", text="ORDER"))
    assert traced.matches(entry(trace_id="t1", venue="sim"))
    assert not traced.matches(entry(trace_id="t12", venue="sim"))
    assert not traced.matches(entry(trace_id="t1", venue="sim", message="cancelled"))
    assert not query_of(pb.TailRequest(service="ven")).matches(entry())


def test_a_line_carries_trace_id_and_venue_from_its_fields() -> None:
    line = as_line(entry("ERROR", trace_id="t1", venue="sim", symbol="BTC/USDT"))
    assert (line.level, line.trace_id, line.venue, line.fields["symbol"]) == (
        pb.LOG_LEVEL_ERROR,
        "t1",
        "sim",
        "BTC/USDT",
    )


def test_a_signals_chain_trace_id_is_its_uuids_hex_else_a_hash_of_its_id() -> None:
    signal_id = "41d45443-b6d1-4e9e-afb3-c85e10b7bf03"
    assert chain_trace_id(signal_id) == "41d45443b6d14e9eafb3c85e10b7bf03"
    other = chain_trace_id("watch-1764200000")
    assert re.fullmatch(r"[0-9a-f]{32}", other) and other == chain_trace_id("watch-1764200000")
    assert other != chain_trace_id("watch-1764200001")
