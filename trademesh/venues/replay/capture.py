"""Read recorded exchange sessions (the line format of fixtures/exchange-captures/README.md).

    <url> -> <ts>: <body>        a REST response (in *.0 and *.http.N.0 files)
    <url> <-> <ts>               a WebSocket connection was opened
    <url> <- <ts>: <text>        a frame the client sent
    <ts>: <text>                 a frame the client received

Frames received on several connections (one file each) are merged by time,
keeping each file's own order.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

from trademesh.core.platform.errors import InvalidArgument

__all__ = ["Capture", "RestRecord", "WsFrame", "load_capture"]

_TS = r"(\d+(?:\.\d+)?)"
_REST = re.compile(rf"^(\S+) -> {_TS}: (.*)$", re.S)
_OPEN = re.compile(rf"^(\S+) <-> {_TS}$")
_SENT = re.compile(rf"^(\S+) <- {_TS}: (.*)$", re.S)
_RECEIVED = re.compile(rf"^{_TS}: (.*)$", re.S)
_META = re.compile(r"^([a-z_]+): (.*)$", re.S)  # e.g. "configuration: {...}" (the recorder's settings)


@dataclass(frozen=True)
class RestRecord:
    url: str
    ts: float
    body: str

    @property
    def path(self) -> str:
        """host + path, e.g. "api.binance.com/api/v3/depth"."""
        parts = urlsplit(self.url)
        return parts.netloc.split(":")[0] + parts.path

    @property
    def query(self) -> dict[str, str]:
        return dict(parse_qsl(urlsplit(self.url).query))


@dataclass(frozen=True)
class WsFrame:
    ts: float
    text: str
    connection: int


@dataclass
class Capture:
    rest: list[RestRecord] = field(default_factory=list)
    ws_urls: dict[int, str] = field(default_factory=dict)
    sent: list[WsFrame] = field(default_factory=list)
    received: list[WsFrame] = field(default_factory=list)
    meta: dict[str, str] = field(default_factory=dict)

    def rest_for(self, path_suffix: str) -> list[RestRecord]:
        return [record for record in self.rest if record.path.endswith(path_suffix)]


def load_capture(paths: Iterable[Path]) -> Capture:
    capture = Capture()
    for connection, path in enumerate(sorted(Path(p) for p in paths)):
        _read_file(capture, path, connection)
    if not capture.rest and not capture.received:
        raise InvalidArgument.field("replay", "the capture files hold no REST answers and no frames")
    capture.received.sort(key=lambda frame: frame.ts)  # stable: each file keeps its order
    return capture


def _read_file(capture: Capture, path: Path, connection: int) -> None:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidArgument.field("replay", f"cannot read capture file {path}: {exc.strerror}") from exc
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            _read_line(capture, line, connection, f"{path}:{number}")


def _read_line(capture: Capture, line: str, connection: int, where: str) -> None:
    if match := _REST.match(line):
        capture.rest.append(RestRecord(match[1], float(match[2]), match[3]))
    elif match := _OPEN.match(line):
        capture.ws_urls[connection] = match[1]
    elif match := _SENT.match(line):
        capture.sent.append(WsFrame(float(match[2]), match[3], connection))
    elif match := _RECEIVED.match(line):
        capture.received.append(WsFrame(float(match[1]), match[2], connection))
    elif match := _META.match(line):
        capture.meta[match[1]] = match[2]
    else:
        raise InvalidArgument.field("replay", f"{where}: not a capture line: {line[:80]!r}")
