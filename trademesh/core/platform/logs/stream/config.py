"""Whether a process puts its log lines on the stream, and where: from the environment.

TRADEMESH_LOG_STREAM: unset or `on`: the bus at $REDIS_URL when it is set (no bus, no stream);
`off`: never; a redis:// (or redis+cluster://) URL: that Redis, whatever $REDIS_URL says.
TRADEMESH_LOG_STREAM_MAXLEN: the stream's bound in entries (default 100,000; XADD MAXLEN ~).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from trademesh.core.platform.config.env import REDIS_SCHEMES, REDIS_URL, bounded_number, read_secret
from trademesh.core.platform.logs.redact import check_url

__all__ = ["DEFAULT_MAXLEN_ENTRIES", "LOG_STREAM", "LOG_STREAM_MAXLEN", "StreamSettings", "stream_settings"]

LOG_STREAM = "TRADEMESH_LOG_STREAM"
LOG_STREAM_MAXLEN = "TRADEMESH_LOG_STREAM_MAXLEN"
DEFAULT_MAXLEN_ENTRIES = 100_000
_MIN_MAXLEN, _MAX_MAXLEN = 1_000, 100_000_000


@dataclass(frozen=True)
class StreamSettings:
    url: str = field(repr=False)  # may hold a password
    maxlen_entries: int = DEFAULT_MAXLEN_ENTRIES


def stream_settings() -> StreamSettings | None:
    """The stream to write to, or None; InvalidArgument naming the variable for a bad value."""
    switch = (read_secret(LOG_STREAM) or "on").strip()
    if switch.lower() == "off":
        return None
    if switch.lower() == "on":
        url = read_secret(REDIS_URL)
        if url is None:
            return None
        check_url(url, REDIS_SCHEMES, REDIS_URL)
    else:
        url = check_url(switch, REDIS_SCHEMES, LOG_STREAM)
    return StreamSettings(url, _maxlen())


def _maxlen() -> int:
    return bounded_number(
        LOG_STREAM_MAXLEN, int, DEFAULT_MAXLEN_ENTRIES, (_MIN_MAXLEN, _MAX_MAXLEN), "a number of entries"
    )
