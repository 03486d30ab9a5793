"""LogHub's writing side: every process's log lines, besides stderr, on one bounded Redis stream.

core.foundations.logs installs the handler (handler.StreamLogHandler) when the process has a bus
(config.stream_settings: $REDIS_URL, or TRADEMESH_LOG_STREAM); the gateway reads the stream
(gateway.logs). The entry format both sides share is entry.py's.
"""

from core.foundations.logstream.config import LOG_STREAM, LOG_STREAM_MAXLEN, StreamSettings, stream_settings
from core.foundations.logstream.entry import STREAM, LogEntry, decode_entry
from core.foundations.logstream.handler import StreamLogHandler

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
