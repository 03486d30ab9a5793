"""Hypothesis strategies for hostile gRPC-web requests: bodies framed well and badly, base64
text bodies, odd header values, content-types, paths and request targets."""

from __future__ import annotations

import base64
import string
import struct
from dataclasses import dataclass

from hypothesis import strategies as st

__all__ = [
    "CONTENT_TYPES",
    "ODD_TARGETS",
    "WebCall",
    "framed",
    "odd_header",
    "path_part",
    "spliced",
    "web_call",
]

_FRAME = struct.Struct(">BI")
_ODD_HEADERS = (
    "x-request-id",
    "x-user-agent",
    "grpc-timeout",
    "x-trademesh-target",
    "authorization",
    # Echoed in the CORS answer.
    "origin",
    "content-type",
    "x-grpc-web",
    "traceparent",
)
CONTENT_TYPES = (
    "application/grpc-web",
    "application/grpc-web+proto",
    "application/grpc-web-text",
    "application/grpc-web-text+proto",
    "APPLICATION/GRPC-WEB+PROTO",
    "application/grpc-web+proto; charset=utf-8",
    "application/grpc-web+json",
    "application/grpc",
    "application/json",
    "text/plain",
    "",
    ";;;",
    "application/grpc-web;" + "x" * 5000,
)


def _framing(message: bytes, framing: str) -> bytes:
    """`message` in a gRPC-web body, framed as `framing` says (well, or one way of badly)."""
    frames = {
        "good": _FRAME.pack(0, len(message)) + message,
        "long": _FRAME.pack(0, len(message) + 7) + message,
        "short": _FRAME.pack(0, max(0, len(message) - 1)) + message,
        "huge": _FRAME.pack(0, 0xFFFFFFFF) + message,
        "compressed": _FRAME.pack(1, len(message)) + message,
        "trailers": _FRAME.pack(0x80, len(message)) + message,
        "flags": _FRAME.pack(0x7E, len(message)) + message,
        "two": (_FRAME.pack(0, len(message)) + message) * 2,
        "cut": _FRAME.pack(0, len(message))[:3],
        "empty": b"",
        "raw": message,
    }
    return frames[framing]


_FRAMINGS = st.sampled_from(["good"] * 6 + ["long", "short", "huge", "compressed", "trailers", "flags",
                                            "two", "cut", "empty", "raw"])  # fmt: skip


def _as_text(body: bytes, chunks: int, noise: str) -> bytes:
    size = max(1, len(body) // chunks)
    encoded = b"".join(base64.b64encode(body[i : i + size]) for i in range(0, len(body), size))
    noisy = {
        "none": encoded,
        "spaces": encoded + b" \n",
        "bad": encoded + b"!*",
        "unpadded": encoded.rstrip(b"="),
    }
    return noisy[noise]


@dataclass(frozen=True)
class WebCall:
    content_type: str
    body: bytes
    extra: tuple[tuple[bytes, bytes], ...]


@st.composite
def web_call(draw: st.DrawFn, bodies: st.SearchStrategy[bytes]) -> WebCall:
    """A call of a method whose requests `bodies` draws (tests.integration.fuzz_support.
    body_strategy), framed and encoded well or badly."""
    body = _framing(draw(bodies), draw(_FRAMINGS))
    text = draw(st.booleans())
    if text:
        noise = draw(st.sampled_from(["none"] * 4 + ["spaces", "bad", "unpadded", "any"]))
        if noise == "any":
            body = draw(st.text(string.ascii_letters + string.digits + "+/= \n", max_size=80)).encode()
        else:
            body = _as_text(body, draw(st.integers(1, 3)), noise)
    content_type = "application/grpc-web-text" if text else "application/grpc-web+proto"
    timeout = draw(st.sampled_from([None, None, b"1S", b"500m", b"1n", b"S", b"-1S", b"1\xffS"]))
    extra = () if timeout is None else ((b"grpc-timeout", timeout),)
    return WebCall(content_type, body, extra)


def _header_value() -> st.SearchStrategy[bytes]:
    """Any header value a client could put on the wire (no CR or LF: they would end the line)."""
    return st.one_of(
        st.binary(max_size=60).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b"")),
        st.text(max_size=30).map(lambda t: t.encode("utf-8").replace(b"\r", b"").replace(b"\n", b"")),
        st.sampled_from([b"", b"\xff\xfe", "é".encode(), b"Bearer \xc3\xa9", b"Bearer", b"1S" * 500,
                         b"x" * 8000, b"sim\x00", b"../sim", b"%00"]),
    )  # fmt: skip


def odd_header() -> st.SearchStrategy[tuple[bytes, bytes]]:
    return st.tuples(st.sampled_from(_ODD_HEADERS).map(str.encode), _header_value())


def path_part() -> st.SearchStrategy[bytes]:
    return st.one_of(
        st.text(string.ascii_letters + string.digits + "._-%", max_size=30).map(str.encode),
        st.text(max_size=15).map(lambda t: t.encode("utf-8")),
        st.sampled_from([b"%00", b"%2F", b"%C3%A9", b"\xc3\xa9", b"..", b"", b"a" * 10000, b"%ZZ", b"%"]),
    )


# Request targets in the other forms HTTP allows (or nearly).
ODD_TARGETS = [
    b"*",
    b"http://127.0.0.1/grpc.health.v1.Health/Check",
    b"http://[::1/grpc.health.v1.Health/Check",
    b"127.0.0.1:443",
    b"//grpc.health.v1.Health/Check",
    b"/grpc.health.v1.Health/Check?",
    b"/grpc.health.v1.Health/Check#frag",
    b"/grpc.health.v1.Health//Check",
    b"/./grpc.health.v1.Health/Check",
    b"/grpc.health.v1.Health/../Check",
    b"/api/login/",
    b"/mcp/x",
    b"/metrics/../metrics",
]


def spliced(path: bytes, part: bytes, in_service: bool) -> bytes:
    """`path` (/<service>/<method>) with `part` after its service or its method name."""
    service, _, method = path[1:].partition(b"/")
    return b"/" + service + part + b"/" + method if in_service else path + part


def framed(message: bytes) -> bytes:
    """`message` as the one data frame of a gRPC-web body."""
    return _FRAME.pack(0, len(message)) + message
