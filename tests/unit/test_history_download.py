"""The pure parts of `trademesh data download`: times and timeframes as the CLI reads them, the
bars a range asks for, the progress it draws, and the retry delay a venue's status carries."""

from __future__ import annotations

import io

import grpc
import pytest
from google.protobuf import any_pb2, duration_pb2
from google.rpc import error_details_pb2, status_pb2

from trademesh.core.domain.model import Timeframe
from trademesh.core.history.download import (
    Fetched,
    Job,
    bars_between,
    candle_range,
    parse_time,
    parse_timeframes,
)
from trademesh.core.history.download_venue import retry_delay
from trademesh.core.history.progress import Progress, eta_text, fraction_done
from trademesh.core.platform.errors import InvalidArgument

S = 10**9
JAN_1_2024 = 1_704_067_200 * S  # a Monday


def test_a_date_is_its_midnight_utc_and_an_iso_time_keeps_its_offset_and_fraction() -> None:
    assert parse_time("2024-01-01", "since") == JAN_1_2024
    assert parse_time("2024-01-01T12:00:00Z", "since") == JAN_1_2024 + 12 * 3600 * S
    assert parse_time("2024-01-01T12:00:00", "since") == JAN_1_2024 + 12 * 3600 * S
    assert parse_time("2024-01-01T12:00:00+02:00", "since") == JAN_1_2024 + 10 * 3600 * S
    assert parse_time("2024-01-01T00:00:00.250Z", "since") == JAN_1_2024 + 250_000_000


@pytest.mark.parametrize("text", ["2024-13-01", "yesterday", "", "1969-12-31"])
def test_a_bad_time_is_refused_naming_the_option_and_the_value(text: str) -> None:
    with pytest.raises(InvalidArgument) as refused:
        parse_time(text, "until")
    assert refused.value.violations[0].field == "until"
    assert repr(text) in refused.value.violations[0].description


def test_timeframes_are_read_once_each_finest_first_and_an_unknown_one_is_named() -> None:
    assert parse_timeframes("1h,1m, 1m,1w") == (Timeframe.M1, Timeframe.H1, Timeframe.W1)
    with pytest.raises(InvalidArgument) as refused:
        parse_timeframes("1m,3m")
    assert refused.value.violations[0].field == "timeframes"
    assert "'3m' is not a timeframe" in refused.value.violations[0].description


def test_a_range_starts_at_the_first_bar_opening_in_it_and_ends_before_the_bar_still_open() -> None:
    day = 86_400 * S
    assert candle_range(JAN_1_2024, JAN_1_2024 + day, Timeframe.M1, JAN_1_2024 + 10 * day) == (
        JAN_1_2024,
        JAN_1_2024 + day,
    )
    # Off the grid: the bar opening at 00:00:30 is not of the range; the next one is.
    assert candle_range(JAN_1_2024 + 30 * S, JAN_1_2024 + day, Timeframe.M1, JAN_1_2024 + 2 * day)[0] == (
        JAN_1_2024 + 60 * S
    )
    # Now in the middle of the range: up to the open of the bar still open.
    now = JAN_1_2024 + 3600 * S + 59 * S
    assert candle_range(JAN_1_2024, JAN_1_2024 + day, Timeframe.M1, now) == (
        JAN_1_2024,
        JAN_1_2024 + 3600 * S,
    )
    # Weeks open on Mondays: from a Wednesday, the next Monday.
    assert candle_range(JAN_1_2024 + 2 * day, JAN_1_2024 + 30 * day, Timeframe.W1, JAN_1_2024 + 90 * day)[
        0
    ] == (JAN_1_2024 + 7 * day)
    # A range holding no whole bar is empty (start = end), never reversed.
    start, end = candle_range(JAN_1_2024 + S, JAN_1_2024 + 30 * S, Timeframe.M1, JAN_1_2024 + day)
    assert start == end


def test_the_bars_of_a_range_are_counted_from_its_start_on_the_grid() -> None:
    assert bars_between(JAN_1_2024, JAN_1_2024 + 86_400 * S, Timeframe.M1) == 1440
    assert bars_between(JAN_1_2024, JAN_1_2024 + 90 * S, Timeframe.M1) == 2
    assert bars_between(JAN_1_2024, JAN_1_2024, Timeframe.M1) == 0


def _fetched(cursor_ns: int, rows: int, pages: int = 1) -> Fetched:
    job = Job("binance", "BTC/USDT", Timeframe.M1, JAN_1_2024, JAN_1_2024 + 1000 * 60 * S)
    done = Fetched(job, JAN_1_2024, 1000, rows=rows, pages=pages, cursor_ns=cursor_ns)
    done.started -= 10.0  # ten seconds in
    return done


def test_progress_is_the_share_of_the_range_by_time_and_the_eta_its_rate_carried_on() -> None:
    quarter = _fetched(JAN_1_2024 + 250 * 60 * S, 250)
    assert fraction_done(quarter) == 0.25
    assert eta_text(0.25, 10.0) == "0:30"
    assert eta_text(0.01, 4000.0) == "110:00:00"
    assert eta_text(0.0, 10.0) == "--:--"


def test_a_log_gets_a_plain_line_at_the_start_now_and_then_and_at_the_end() -> None:
    out = io.StringIO()
    progress = Progress(out, tty=False, interval_s=3600)
    progress(_fetched(JAN_1_2024, 0, pages=0))
    progress(_fetched(JAN_1_2024 + 250 * 60 * S, 250))  # within the interval: not said
    done = _fetched(JAN_1_2024 + 1000 * 60 * S, 1000)
    done.finished = done.started + 10.0
    progress(done)
    lines = out.getvalue().splitlines()
    assert len(lines) == 2 and "\r" not in out.getvalue()
    assert lines[0].startswith("binance BTC/USDT 1m:   0% 0/1,000 rows")
    assert lines[1] == "binance BTC/USDT 1m: 1,000/1,000 rows, 100 rows/s, done in 10.0 s"


def test_a_terminal_gets_one_bar_redrawn_in_place_and_a_said_line_below_it() -> None:
    out = io.StringIO()
    progress = Progress(out, tty=True)
    progress(_fetched(JAN_1_2024 + 500 * 60 * S, 500))
    progress.say("RESOURCE_EXHAUSTED: slow down: waiting 1.0 s")
    text = out.getvalue()
    assert text.startswith(
        "\rbinance BTC/USDT 1m: [############............]  50% 500/1,000 rows, 50 rows/s, ETA 0:10"
    )
    assert text.endswith("\r\x1b[KRESOURCE_EXHAUSTED: slow down: waiting 1.0 s\n")


def _error(code: grpc.StatusCode, details: list[any_pb2.Any]) -> grpc.aio.AioRpcError:
    status = status_pb2.Status(code=code.value[0], message="slow down", details=details)
    trailing = grpc.aio.Metadata(("grpc-status-details-bin", status.SerializeToString()))
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), trailing, details="slow down")


def test_the_retry_delay_is_the_statuss_retry_info_when_it_carries_one() -> None:
    info = any_pb2.Any()
    info.Pack(error_details_pb2.RetryInfo(retry_delay=duration_pb2.Duration(seconds=2, nanos=500_000_000)))
    assert retry_delay(_error(grpc.StatusCode.RESOURCE_EXHAUSTED, [info])) == 2.5
    assert retry_delay(_error(grpc.StatusCode.UNAVAILABLE, [])) is None
    bare = grpc.aio.AioRpcError(grpc.StatusCode.UNAVAILABLE, grpc.aio.Metadata(), grpc.aio.Metadata())
    assert retry_delay(bare) is None
