"""LogHub's writing side: every process's log lines, besides stderr, on one bounded Redis stream.

trademesh.core.platform.logs.setup installs the handler (handler.StreamLogHandler) when the process has a bus
(config.stream_settings: $REDIS_URL, or TRADEMESH_LOG_STREAM); the gateway reads the stream
(trademesh.gateway.logs). The entry format both sides share is entry.py's.
"""

from trademesh.core.platform.logs.stream.config import (
    LOG_STREAM,
    LOG_STREAM_MAXLEN,
    StreamSettings,
    stream_settings,
)
from trademesh.core.platform.logs.stream.entry import STREAM, LogEntry, decode_entry
from trademesh.core.platform.logs.stream.handler import StreamLogHandler

__all__ = [
    "LOG_STREAM",
    "LOG_STREAM_MAXLEN",
    "STREAM",
    "LogEntry",
    "StreamLogHandler",
    "StreamSettings",
    "decode_entry",
    "stream_settings",
]
