"""The times `trademesh advisor train` and `calibrate` take (--since, --until), apart from the
tools themselves: a bad time is refused while the arguments are read, before numpy and
scikit-learn are imported (the offline library, trademesh.core.advisor.offline, imports both).
"""

from __future__ import annotations

import datetime as dt
import re
import time

from trademesh.core.platform.errors import shown

__all__ = ["parse_time"]

_NS = 1_000_000_000
_AGO = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}


def parse_time(text: str, now_ns: int | None = None) -> int:
    """ISO 8601 (2026-01-01, 2026-01-01T12:00Z), ns since the epoch, or a duration ago (90m,
    12h, 7d); ValueError naming the text otherwise."""
    now = time.time_ns() if now_ns is None else now_ns
    value = text.strip()
    if value.isdigit():
        return int(value)
    ago = _AGO.fullmatch(value.removesuffix(" ago"))
    if ago is not None:
        return now - int(float(ago.group(1)) * _UNITS[ago.group(2)] * _NS)
    try:
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"{shown(text, 40)} is not a time: ISO 8601 (2026-01-01T12:00Z), ns since the epoch, "
            "or a duration ago (90m, 12h, 7d)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return int(moment.timestamp()) * _NS + moment.microsecond * 1000
