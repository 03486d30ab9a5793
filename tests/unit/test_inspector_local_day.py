"""The equity curve's local day, kept for the span of a day
(trademesh.core.inspector.engine.equity._LocalDay): the same date as local_time's for every time,
across offset changes (a zone whose clocks went back at midnight into the day before included), and
for another zone asked in turn."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from trademesh.core.inspector.engine.equity import _LocalDay, local_time

_NS = 1_000_000_000


def _seconds(start: datetime, hours: int, step_s: int) -> range:
    first = int(start.timestamp())
    return range(first, first + hours * 3600, step_s)


@pytest.mark.parametrize(
    ("zone", "start"),
    [
        ("Europe/Berlin", datetime(2026, 3, 28, tzinfo=UTC)),  # clocks forward at 02:00
        ("Europe/Berlin", datetime(2026, 10, 24, tzinfo=UTC)),  # back at 03:00
        ("America/Sao_Paulo", datetime(2018, 2, 16, tzinfo=UTC)),  # back at midnight, into the day before
        ("America/Sao_Paulo", datetime(2018, 11, 3, tzinfo=UTC)),  # forward at midnight
        ("Australia/Lord_Howe", datetime(2026, 4, 4, tzinfo=UTC)),  # a half-hour change
        ("UTC", datetime(2026, 12, 31, tzinfo=UTC)),
    ],
)
def test_the_date_is_local_times_every_minute_across_a_change(zone: str, start: datetime) -> None:
    tz, day = ZoneInfo(zone), _LocalDay()
    for second in _seconds(start, 96, 59):  # 59 s: every minute's seconds in turn, both sides of each change
        assert day.of(second * _NS, tz) == local_time(second * _NS, tz).date(), second


def test_another_zone_is_read_again() -> None:
    day, berlin, tokyo = _LocalDay(), ZoneInfo("Europe/Berlin"), ZoneInfo("Asia/Tokyo")
    # 22:00 in Berlin, 05:00 the next day in Tokyo
    at = int(datetime(2026, 6, 1, 20, 0, tzinfo=UTC).timestamp()) * _NS
    assert day.of(at, berlin) == datetime(2026, 6, 1).date()
    assert day.of(at, tokyo) == datetime(2026, 6, 2).date()
    assert day.of(at, berlin) == datetime(2026, 6, 1).date()
