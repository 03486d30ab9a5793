"""Configuration of a live venue: TOML, every key optional, unknown keys refused (the keys are
declared on LiveConfig and read by trademesh.core.platform.config.schema).

symbols = ["BTC/USDT", "ETH/USDT"]       # canonical (ccxt unified) symbols (`--symbols` replaces them)
channels = ["trades", "book", "candles", "tickers"]  # and, at a derivatives venue, "funding", "mark",
                                          # "open_interest", "liquidations" (the last two only if named)
timeframes = ["1m"]                       # candle streams: 1s 1m 5m 15m 1h 4h 1d 1w
sandbox = false                           # the venue's testnet (also TRADEMESH_<VENUE>_SANDBOX=1)
watchdog_silence_s = 60                   # a connection silent this long is restarted
backoff_initial_s = 0.5                   # reconnect backoff: doubles per failure, with jitter
backoff_max_s = 30
stale_factor = 4                          # a stream silent this many times its usual silence is stale...
stale_floor_s = 15                        # ...and at least this long (docs/venues.md, stream health)
flush_ms = 2                              # frames within 2 ms of a dispatch go out together (0: at once)
funding_stream = true                     # funding rates from the venue's stream where it has one...
funding_poll_s = 60                       # ...else (or false) read by REST this often
open_interest_poll_s = 10                 # open interest read by REST this often where not streamed
markets_reload_s = 300                    # the exchange's markets read again this often (0: never)
replay_url = "http://127.0.0.1:8123"      # a stand-in in another process on this machine (not with --replay)
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, cast
from urllib.parse import urlsplit

from trademesh.core.domain.model import Channel, Timeframe
from trademesh.core.platform.config.file import read_toml
from trademesh.core.platform.config.schema import NOT_EMPTY, Above, Parse, Reading, Within, read_value
from trademesh.core.platform.config.schema.words import one_of
from trademesh.core.platform.errors import InvalidArgument
from trademesh.venues.live.spec import LiveSpec

__all__ = ["OPT_IN_CHANNELS", "LiveConfig", "load_config"]

_REPLAY_SCHEMES = ("http", "ws")


def _timeframe(value: Any, path: str) -> Timeframe:
    return Timeframe.from_label(read_value(str, value, path))


def _replay_url(value: Any, path: str) -> str:
    """The stand-in's base url, `http://HOST:PORT` (or `ws://`): nothing after the port, since the
    stand-in serves each of the venue's hosts under its own first path segment."""
    expected = "http://HOST:PORT (the stand-in's base url, nothing after the port)"
    if not isinstance(value, str):
        raise InvalidArgument.field(path, f"must be {expected}, not {value!r}")
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
        raise InvalidArgument.field(path, f"must be {expected}, not {value!r}")
    if not _loopback(parts.hostname):
        raise InvalidArgument.field(
            path,
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


# Offered channels a venue opens only where its config's `channels` names them: each costs a
# stream (liquidations) or a REST read (open interest, where polled) per symbol.
OPT_IN_CHANNELS = (Channel.OPEN_INTEREST, Channel.LIQUIDATIONS)


@dataclass(frozen=True)
class LiveConfig:
    # Left out of the file: the replay's symbols, else the spec's defaults; the spec's channels
    # but OPT_IN_CHANNELS, and its timeframes (load_config).
    symbols: tuple[Annotated[str, NOT_EMPTY], ...]
    channels: tuple[Channel, ...]
    timeframes: tuple[Annotated[Timeframe, Parse(_timeframe)], ...]
    sandbox: bool = False
    watchdog_silence_s: Annotated[float, Above(0)] = 60.0
    backoff_initial_s: Annotated[float, Above(0)] = 0.5
    backoff_max_s: Annotated[float, Above(0)] = 30.0
    request_timeout_s: Annotated[float, Above(0)] = 10.0
    stale_factor: Annotated[float, Above(0)] = 4.0
    stale_floor_s: Annotated[float, Above(0)] = 15.0
    # A frame's events go out at once unless the last dispatch was less than this long ago; then
    # they wait for the rest of it, with what else comes meanwhile (0: every burst at once).
    flush_ms: Annotated[float, Within(0)] = 2.0
    # The funding channel: the venue's funding stream where it has one (LiveSpec.funding_watch);
    # false, or a venue without one, reads it by REST (ccxt fetch_funding_rate) every
    # funding_poll_s (at least 0.1 s, at most a day).
    funding_stream: bool = True
    funding_poll_s: Annotated[float, Within(0.1, 86400)] = 60.0
    # The open interest channel of a venue that streams none: read by REST (ccxt
    # fetch_open_interest) this often (trademesh/venues/live/interest_poll.py).
    open_interest_poll_s: Annotated[float, Within(0.1, 86400)] = 10.0
    # The exchange's markets read again this often, off the order and stream paths: delistings,
    # inactive markets and changed trading rules reach ListInstruments (trademesh.venues.live.market_reload);
    # 0: read once, at start.
    markets_reload_s: Annotated[float, Within(0, 86400)] = 300.0
    # A replay stand-in served by another process (http://HOST:PORT): every venue url points at it,
    # as `--replay` points them at the stand-in it runs inside the venue; None: the venue itself.
    replay_url: Annotated[str | None, Parse(_replay_url)] = None

    def __post_init__(self) -> None:
        if self.replay_url is not None and self.sandbox:
            raise InvalidArgument.field(
                "replay_url", "a replay stand-in and the venue's sandbox exclude each other"
            )


def load_config(spec: LiveSpec, path: Path | None, symbols: Sequence[str] | None = None) -> LiveConfig:
    """The config at `path` (None: the defaults); `symbols` (`trademesh venue --symbols`), when
    given, replace its symbols: each is checked against the exchange's markets at start, as the
    file's are (trademesh.venues.live.markets.choose_symbols)."""
    reading = Reading(None if path is None else str(path))
    values = reading.values(LiveConfig, {} if path is None else read_toml(path, "config")) or {}
    if symbols is not None:
        values["symbols"] = tuple(symbols)
    offered = spec.channels
    for channel in values.get("channels", ()):
        if channel not in offered:  # ccxt could not watch it
            known = one_of(channel.value, [c.value for c in offered])
            reading.refuse("channels", f"{known} ({spec.name}'s channels)")
    values.setdefault("symbols", ())
    values.setdefault("channels", tuple(c for c in offered if c not in OPT_IN_CHANNELS))
    for timeframe in values.get("timeframes", ()):
        if timeframe in spec.off_grid:
            reading.refuse("timeframes", f"{spec.name}'s {timeframe.label} candles open off the mesh's grid")
    values.setdefault("timeframes", tuple(spec.timeframes))
    config = reading.make(LiveConfig, values)
    reading.done()
    return cast(LiveConfig, config)
