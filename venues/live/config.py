"""Configuration of a live venue: TOML, every key optional, unknown keys refused.

symbols = ["BTC/USDT", "ETH/USDT"]       # canonical (ccxt unified) symbols
channels = ["trades", "book", "candles", "tickers"]
timeframes = ["1m"]                       # candle streams: 1s 1m 5m 15m 1h 4h 1d
sandbox = false                           # the venue's testnet (also TRADEMESH_<VENUE>_SANDBOX=1)
watchdog_silence_s = 60                   # a connection silent this long is restarted
backoff_initial_s = 0.5                   # reconnect backoff: doubles per failure, with jitter
backoff_max_s = 30
stale_factor = 4                          # a stream silent this many times its usual silence is stale...
stale_floor_s = 15                        # ...and at least this long (docs/venues.md, stream health)
flush_ms = 2                              # frames within 2 ms of a dispatch go out together (0: at once)
replay_url = "http://127.0.0.1:8123"      # a stand-in in another process on this machine (not with --replay)
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from core.foundations.config_file import read_toml
from core.foundations.errors import InvalidArgument
from core.foundations.model import TIMEFRAME_LABELS, Channel, Timeframe
from venues.live.spec import LiveSpec

__all__ = ["LiveConfig", "load_config"]

_KEYS = {
    "symbols",
    "channels",
    "timeframes",
    "sandbox",
    "watchdog_silence_s",
    "backoff_initial_s",
    "backoff_max_s",
    "request_timeout_s",
    "stale_factor",
    "stale_floor_s",
    "flush_ms",
    "replay_url",
}

_REPLAY_SCHEMES = ("http", "ws")


@dataclass(frozen=True)
class LiveConfig:
    symbols: tuple[str, ...]  # empty: the replay's symbols, else the spec's defaults
    channels: tuple[Channel, ...]
    timeframes: tuple[Timeframe, ...]
    sandbox: bool = False
    watchdog_silence_s: float = 60.0
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 30.0
    request_timeout_s: float = 10.0
    stale_factor: float = 4.0
    stale_floor_s: float = 15.0
    # A frame's events go out at once unless the last dispatch was less than this long ago; then
    # they wait for the rest of it, with what else comes meanwhile (0: every burst at once).
    flush_ms: float = 2.0
    # A replay stand-in served by another process (http://HOST:PORT): every venue url points at it,
    # as `--replay` points them at the stand-in it runs inside the venue; None: the venue itself.
    replay_url: str | None = None


def load_config(spec: LiveSpec, path: Path | None) -> LiveConfig:
    raw: dict[str, Any] = {}
    if path is not None:
        raw = read_toml(path, "config")
    unknown = sorted(set(raw) - _KEYS)
    if unknown:
        raise InvalidArgument.field("config", f"unknown keys {unknown}; known: {sorted(_KEYS)}")
    sandbox = raw.get("sandbox", False)
    replay_url = _replay_url(raw)
    if replay_url is not None and sandbox:
        raise InvalidArgument.field(
            "replay_url", "a replay stand-in and the venue's sandbox exclude each other"
        )
    return LiveConfig(
        symbols=tuple(_strings(raw, "symbols", [])),
        channels=tuple(_channels(raw, spec)),
        timeframes=tuple(_timeframes(raw, spec)),
        sandbox=bool(sandbox),
        watchdog_silence_s=_positive(raw, "watchdog_silence_s", 60.0),
        backoff_initial_s=_positive(raw, "backoff_initial_s", 0.5),
        backoff_max_s=_positive(raw, "backoff_max_s", 30.0),
        request_timeout_s=_positive(raw, "request_timeout_s", 10.0),
        stale_factor=_positive(raw, "stale_factor", 4.0),
        stale_floor_s=_positive(raw, "stale_floor_s", 15.0),
        flush_ms=_not_negative(raw, "flush_ms", 2.0),
        replay_url=replay_url,
    )


def _strings(raw: dict[str, Any], key: str, default: list[str]) -> list[str]:
    value = raw.get(key, default)
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise InvalidArgument.field(key, f"must be a list of non-empty strings, not {value!r}")
    return value


def _channels(raw: dict[str, Any], spec: LiveSpec) -> list[Channel]:
    """The channels asked for, each one the venue streams (ccxt could not watch another)."""
    offered = [c.value for c in spec.channels]
    chosen = []
    for value in _strings(raw, "channels", offered):
        if value not in offered:
            raise InvalidArgument.field("channels", f"{value!r} is not one of {spec.name}'s {offered}")
        chosen.append(Channel(value))
    return chosen


def _timeframes(raw: dict[str, Any], spec: LiveSpec) -> list[Timeframe]:
    chosen = []
    for value in _strings(raw, "timeframes", [tf.label for tf in spec.timeframes]):
        if value not in TIMEFRAME_LABELS:
            raise InvalidArgument.field("timeframes", f"{value!r} is not one of {list(TIMEFRAME_LABELS)}")
        chosen.append(Timeframe.from_label(value))
    return chosen


def _not_negative(raw: dict[str, Any], key: str, default: float) -> float:
    value = raw.get(key, default)
    if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
        raise InvalidArgument.field(key, f"must be a number of at least 0, not {value!r}")
    return float(value)


def _positive(raw: dict[str, Any], key: str, default: float) -> float:
    value = raw.get(key, default)
    if not isinstance(value, int | float) or isinstance(value, bool) or value <= 0:
        raise InvalidArgument.field(key, f"must be a positive number, not {value!r}")
    return float(value)


def _replay_url(raw: dict[str, Any]) -> str | None:
    """The stand-in's base url, `http://HOST:PORT` (or `ws://`): nothing after the port, since the
    stand-in serves each of the venue's hosts under its own first path segment."""
    value = raw.get("replay_url")
    if value is None:
        return None
    expected = "http://HOST:PORT (the stand-in's base url, nothing after the port)"
    if not isinstance(value, str):
        raise InvalidArgument.field("replay_url", f"must be {expected}, not {value!r}")
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        port = None
        parts = urlsplit("")
    if (
        parts.scheme not in _REPLAY_SCHEMES
        or not parts.hostname
        or port is None
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
        or parts.username is not None
    ):
        raise InvalidArgument.field("replay_url", f"must be {expected}, not {value!r}")
    if not _loopback(parts.hostname):
        raise InvalidArgument.field(
            "replay_url",
            f"must be a stand-in on this machine (127.0.0.1, ::1 or localhost), not {parts.hostname!r}: "
            "the venue's requests, signed with its credentials when it has any, go to it",
        )
    return f"{parts.scheme}://{parts.netloc}"


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
