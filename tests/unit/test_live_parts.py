"""Small parts of the live connector and the replay harness: captures, faults, urls, backoff, config."""

from __future__ import annotations

import time
import types
from pathlib import Path

import pytest

from trademesh.core.domain.model import Channel, Timeframe
from trademesh.core.platform.aio.backoff import Backoff
from trademesh.core.platform.errors import InvalidArgument
from trademesh.venues.binance.spec import SPEC
from trademesh.venues.live.config import load_config
from trademesh.venues.live.convert import safe_message
from trademesh.venues.live.exchange import rewrite_urls
from trademesh.venues.live.streams import Watchdog
from trademesh.venues.live.venue import LiveVenue
from trademesh.venues.replay.capture import load_capture
from trademesh.venues.replay.server import Fault, FaultKind, ReplayOptions, parse_fault


def test_a_capture_reads_rest_answers_connections_and_frames_in_time_order(tmp_path: Path) -> None:
    (tmp_path / "X.0").write_text(
        'configuration: {"a": 1}\nhttps://api.x.com/v1/info?k=v -> 10.5: {"ok": true}\n'
    )
    (tmp_path / "X.ws.1.0").write_text(
        'wss://ws.x.com/v1 <-> 10.0\nwss://ws.x.com/v1 <- 10.1: {"op": "sub"}\n'
        '11.0: {"a": 1}\n13.0: {"a": 3}\n'
    )
    (tmp_path / "X.ws.2.0").write_text('wss://ws.x.com/v2 <-> 10.0\n12.0: {"a": 2}\n')
    capture = load_capture(sorted(tmp_path.iterdir()))
    assert [f.text for f in capture.received] == ['{"a": 1}', '{"a": 2}', '{"a": 3}']
    assert capture.rest[0].path == "api.x.com/v1/info" and capture.rest[0].query == {"k": "v"}
    assert capture.sent[0].text == '{"op": "sub"}' and capture.meta["configuration"] == '{"a": 1}'


def test_a_bad_capture_line_is_named_with_its_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "X.ws.1.0").write_text("wss://ws.x.com <-> 1.0\nnot a capture line\n")
    with pytest.raises(InvalidArgument, match=r"X\.ws\.1\.0:2: not a capture line"):
        load_capture([tmp_path / "X.ws.1.0"])


def test_faults_parse_and_bad_ones_say_what_is_expected() -> None:
    assert parse_fault("gap@40") == Fault(FaultKind.GAP, 40)
    for bad in ("gap", "flood@1", "gap@x", "gap@-1"):
        with pytest.raises(InvalidArgument, match="replay_fault"):
            parse_fault(bad)


def test_urls_point_at_the_stand_in_keeping_the_host_as_the_first_segment() -> None:
    urls = {"ws": {"spot": "wss://stream.binance.com:9443/ws"}, "rest": "https://api.x.com/api/v3", "doc": 3}
    rewritten = rewrite_urls(urls, "http://127.0.0.1:4000")
    assert rewritten == {
        "ws": {"spot": "ws://127.0.0.1:4000/stream.binance.com:9443/ws"},
        "rest": "http://127.0.0.1:4000/api.x.com/api/v3",
        "doc": 3,
    }


def test_backoff_doubles_with_jitter_up_to_its_cap_and_resets() -> None:
    backoff = Backoff(0.5, 4.0, rng=lambda: 0.5)  # jitter factor 1.0
    assert [backoff.next() for _ in range(6)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    backoff.reset()
    assert backoff.next() == 0.5
    assert (
        Backoff(1.0, 8.0, rng=lambda: 0.0).next() == 0.5 and Backoff(1.0, 8.0, rng=lambda: 0.999).next() < 1.5
    )


def test_error_texts_lose_signatures_and_secret_values() -> None:
    error = RuntimeError("GET https://api.x.com/v3/order?timestamp=1&signature=abc 400 key=s3cr3t")
    text = safe_message(error, ["s3cr3t"])
    assert "signature" not in text and "s3cr3t" not in text and "400" in text


def test_live_config_defaults_and_bad_values(tmp_path: Path) -> None:
    config = load_config(SPEC, None)
    assert config.symbols == () and config.timeframes == (Timeframe.M1,) and Channel.BOOK in config.channels
    path = tmp_path / "venue.toml"
    path.write_text('symbols = ["BTC/USDT"]\ntimeframes = ["1m", "5m"]\nchannels = ["trades"]\n')
    config = load_config(SPEC, path)
    assert config.symbols == ("BTC/USDT",) and config.channels == (Channel.TRADES,)
    assert config.timeframes == (Timeframe.M1, Timeframe.M5)
    for text, field in (
        ('timeframes = ["2m"]', "timeframes"),
        ("watchdog_silence_s = 0", "watchdog_silence_s"),
        ("colour = 1", "colour"),
        ('channels = ["news"]', "channels"),
        ("funding_poll_s = 0", "funding_poll_s"),
        ("funding_poll_s = 86401", "funding_poll_s"),
        ("funding_stream = 1", "funding_stream"),
        ('channels = ["funding"]', "channels"),  # a spot venue's: it has no funding channel
    ):
        path.write_text(text)
        with pytest.raises(InvalidArgument) as failure:
            load_config(SPEC, path)
        assert failure.value.violations[0].field == field


def test_a_replay_url_is_a_stand_in_base_url_and_bad_ones_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "venue.toml"
    assert load_config(SPEC, None).replay_url is None
    for text, expected in (
        ("http://127.0.0.1:8123", "http://127.0.0.1:8123"),
        ("ws://localhost:9000/", "ws://localhost:9000"),
    ):
        path.write_text(f'replay_url = "{text}"\n')
        assert load_config(SPEC, path).replay_url == expected
    for value in (
        '"127.0.0.1:8123"',  # no scheme
        '"https://127.0.0.1:8123"',  # the stand-in speaks plain http and ws
        '"wss://127.0.0.1:8123"',
        '"http://127.0.0.1"',  # no port
        '"http://127.0.0.1:99999"',  # not a port
        '"http://127.0.0.1:8123/api"',  # a path: the stand-in serves each host under its own
        '"http://127.0.0.1:8123?x=1"',
        '"http://user@127.0.0.1:8123"',
        '"http://:8123"',
        "8123",
        '""',
    ):
        path.write_text(f"replay_url = {value}\n")
        with pytest.raises(InvalidArgument, match="http://HOST:PORT") as failure:
            load_config(SPEC, path)
        assert failure.value.violations[0].field == "replay_url"
    path.write_text('replay_url = "http://[::1]:8123"\n')
    assert load_config(SPEC, path).replay_url == "http://[::1]:8123"
    for host in ("10.0.0.7", "api.binance.com", "0.0.0.0", "[2001:db8::1]"):
        # The venue's requests (signed, when it has credentials) go to the stand-in: this machine only.
        path.write_text(f'replay_url = "http://{host}:8123"\n')
        with pytest.raises(InvalidArgument, match="on this machine") as failure:
            load_config(SPEC, path)
        assert failure.value.violations[0].field == "replay_url"
    path.write_text('replay_url = "http://127.0.0.1:8123"\nsandbox = true\n')
    with pytest.raises(InvalidArgument, match="sandbox") as failure:
        load_config(SPEC, path)
    assert failure.value.violations[0].field == "replay_url"


def test_a_replay_url_and_a_replay_of_the_venues_own_exclude_each_other(tmp_path: Path) -> None:
    path = tmp_path / "venue.toml"
    path.write_text('replay_url = "http://127.0.0.1:8123"\n')
    config = load_config(SPEC, path)
    assert LiveVenue(SPEC, config).config.replay_url == "http://127.0.0.1:8123"
    with pytest.raises(InvalidArgument, match="--replay") as failure:
        LiveVenue(SPEC, config, ReplayOptions((tmp_path / "X.0",)))
    assert failure.value.violations[0].field == "replay_url"


class SilentClient:
    """What the watchdog reads of a ccxt WebSocket client: when it last heard anything."""

    def __init__(self, silent_for_s: float) -> None:
        self.last_message_at = time.time() * 1000 - silent_for_s * 1000
        self.reset_with: Exception | None = None
        self.closed_count = 0

    def closed(self) -> bool:
        return self.closed_count > 0

    def reset(self, error: Exception) -> None:
        self.reset_with = error

    async def close(self) -> None:
        self.closed_count += 1


async def test_the_watchdog_restarts_only_connections_silent_too_long() -> None:
    quiet, chatty = SilentClient(silent_for_s=90), SilentClient(silent_for_s=1)
    exchange = types.SimpleNamespace(clients={"wss://a": quiet, "wss://b": chatty})
    watchdog = Watchdog(exchange, silence_s=60, quiet_ok=lambda: False)
    await watchdog.check()
    assert quiet.closed_count == 1 and "silent for more than 60 s" in str(quiet.reset_with)
    assert chatty.closed_count == 0 and chatty.reset_with is None
    assert watchdog.restarts == 1
    await watchdog.check()  # already closed: left alone
    assert watchdog.restarts == 1
