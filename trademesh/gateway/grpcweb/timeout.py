"""The grpc-timeout request header: at most 8 digits and a unit (H M S m u n)."""

from __future__ import annotations

import re

from trademesh.core.platform.errors import InvalidArgument

__all__ = ["TIMEOUT_HEADER", "parse_timeout"]

TIMEOUT_HEADER = "grpc-timeout"

_FORMAT = re.compile(r"([0-9]{1,8})([HMSmun])")
_SECONDS_PER_UNIT = {"H": 3600.0, "M": 60.0, "S": 1.0, "m": 1e-3, "u": 1e-6, "n": 1e-9}


def parse_timeout(value: str) -> float:
    """Seconds; InvalidArgument naming the header and the value when it is malformed."""
    match = _FORMAT.fullmatch(value.strip())
    if match is None:
        raise InvalidArgument.field(
            TIMEOUT_HEADER,
            f"{value!r} is not 1-8 digits followed by a unit H, M, S, m, u or n (e.g. 500m, 10S)",
        )
    return int(match.group(1)) * _SECONDS_PER_UNIT[match.group(2)]
