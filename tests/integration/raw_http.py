"""A raw HTTP/1.1 client over a plain socket, for hostile requests no HTTP library would send:
any bytes in the request line and the header values, broken bodies, odd methods.

One request per connection (`connection: close`). The answer is read until the server ends
it, or until `enough(answer)` says a partial answer (an open stream) already tells what the
test needs to know.
"""

from __future__ import annotations

import base64
import re
import socket
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

__all__ = ["RawAnswer", "RawStream", "abandon", "grpcweb_frames", "grpcweb_status", "request", "send"]

_FRAME = struct.Struct(">BI")
_BASE64_SEGMENT = re.compile(rb"[A-Za-z0-9+/]+={0,2}")


@dataclass
class RawAnswer:
    status: int
    headers: list[tuple[str, bytes]]  # names lowercased
    body: bytes = b""  # without the chunked transfer coding; partial unless `complete`
    complete: bool = False

    def header(self, name: str) -> bytes | None:
        for key, value in self.headers:
            if key == name:
                return value
        return None


@dataclass
class _Reader:
    head_request: bool = False
    raw: bytes = b""
    answer: RawAnswer | None = None
    _body_start: int = 0
    _chunked: bool = False
    _length: int | None = None
    _chunks: list[bytes] = field(default_factory=list)

    def feed(self, data: bytes) -> None:
        self.raw += data
        if self.answer is None:
            self._parse_head()
        if self.answer is not None:
            self._parse_body(eof=not data)

    def _parse_head(self) -> None:
        end = self.raw.find(b"\r\n\r\n")
        if end < 0:
            return
        lines = self.raw[:end].split(b"\r\n")
        status = int(lines[0].split(b" ")[1])
        headers: list[tuple[str, bytes]] = []
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            headers.append((name.strip().lower().decode("latin-1"), value.strip()))
        self.answer = RawAnswer(status, headers)
        self._body_start = end + 4
        self._chunked = b"chunked" in (self.answer.header("transfer-encoding") or b"").lower()
        length = self.answer.header("content-length")
        self._length = int(length) if length is not None else None
        if self.head_request or status in (204, 304) or 100 <= status < 200:
            self._length = 0

    def _parse_body(self, eof: bool) -> None:
        assert self.answer is not None
        body = self.raw[self._body_start :]
        if self._chunked:
            self.answer.body, self.answer.complete = _dechunk(body)
        elif self._length is not None:
            self.answer.body = body[: self._length]
            self.answer.complete = len(body) >= self._length
        else:
            self.answer.body = body
            self.answer.complete = eof


def _dechunk(body: bytes) -> tuple[bytes, bool]:
    """(the data of the whole chunks so far, whether the last chunk came)."""
    parts: list[bytes] = []
    offset = 0
    while True:
        line_end = body.find(b"\r\n", offset)
        if line_end < 0:
            return b"".join(parts), False
        size = int(body[offset:line_end].split(b";")[0], 16)
        if size == 0:
            return b"".join(parts), True
        start = line_end + 2
        if len(body) < start + size + 2:
            return b"".join(parts), False
        parts.append(body[start : start + size])
        offset = start + size + 2


class RawStream:
    """A sent request whose answer is read as it comes; close() drops the connection."""

    def __init__(self, sock: socket.socket, head_request: bool) -> None:
        self._sock = sock
        self._reader = _Reader(head_request=head_request)

    def read(self, enough: Callable[[RawAnswer], bool] | None = None) -> RawAnswer:
        """Until the answer is complete or `enough` of it came; fails when the server stops
        answering for the socket's timeout or closes mid-answer."""
        while True:
            try:
                data = self._sock.recv(65536)
            except ConnectionResetError:
                data = b""
            self._reader.feed(data)
            answer = self._reader.answer
            if answer is not None and (answer.complete or (enough is not None and enough(answer))):
                return answer
            if not data:
                raise AssertionError(f"the connection closed mid-answer after {len(self._reader.raw)} bytes")

    def read_for(self, seconds: float) -> RawAnswer | None:
        """What came within `seconds` (the answer so far; None before its head)."""
        self._sock.settimeout(seconds)
        try:
            while (data := self._sock.recv(65536)) != b"":
                self._reader.feed(data)
        except TimeoutError:
            pass
        return self._reader.answer

    def close(self) -> None:
        self._sock.close()


def send(
    port: int,
    method: bytes,
    target: bytes,
    headers: Sequence[tuple[bytes, bytes]] = (),
    body: bytes = b"",
    *,
    timeout_s: float = 15.0,
) -> RawStream:
    """One request to 127.0.0.1:`port`, the request line and headers sent byte for byte."""
    head = [method + b" " + target + b" HTTP/1.1", b"host: 127.0.0.1", b"connection: close"]
    head += [name + b": " + value for name, value in headers]
    head.append(b"content-length: " + str(len(body)).encode())
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout_s)
    try:
        sock.sendall(b"\r\n".join(head) + b"\r\n\r\n" + body)
    except OSError:
        sock.close()
        raise
    return RawStream(sock, head_request=method == b"HEAD")


def abandon(port: int, target: bytes, headers: Sequence[tuple[bytes, bytes]], body: bytes, sent: int) -> None:
    """A POST announcing all of `body` that sends only its first `sent` bytes, then hangs up."""
    head = [b"POST " + target + b" HTTP/1.1", b"host: 127.0.0.1"]
    head += [name + b": " + value for name, value in headers]
    head.append(b"content-length: " + str(len(body)).encode())
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"\r\n".join(head) + b"\r\n\r\n" + body[:sent])


def request(
    port: int,
    method: bytes,
    target: bytes,
    headers: Sequence[tuple[bytes, bytes]] = (),
    body: bytes = b"",
    *,
    enough: Callable[[RawAnswer], bool] | None = None,
    timeout_s: float = 15.0,
) -> RawAnswer:
    """One request and its answer (see send() and RawStream.read())."""
    stream = send(port, method, target, headers, body, timeout_s=timeout_s)
    try:
        return stream.read(enough)
    finally:
        stream.close()


def grpcweb_frames(answer: RawAnswer) -> list[tuple[int, bytes]]:
    """The whole (flag, payload) frames of a gRPC-web answer's body so far (text mode decoded)."""
    body = answer.body
    if (answer.header("content-type") or b"").startswith(b"application/grpc-web-text"):
        body = b"".join(base64.b64decode(part) for part in _BASE64_SEGMENT.findall(body))
    frames: list[tuple[int, bytes]] = []
    offset = 0
    while len(body) - offset >= _FRAME.size:
        flag, length = _FRAME.unpack_from(body, offset)
        end = offset + _FRAME.size + length
        if end > len(body):
            break
        frames.append((flag, body[offset + _FRAME.size : end]))
        offset = end
    return frames


def grpcweb_status(answer: RawAnswer) -> int | None:
    """The grpc-status of a gRPC-web answer: from the headers (trailers-only) or the trailer
    frame; None when neither carries one yet."""
    found = answer.header("grpc-status")
    if found is not None:
        return int(found)
    for flag, payload in grpcweb_frames(answer):
        if flag & 0x80:
            for line in payload.split(b"\r\n"):
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"grpc-status":
                    return int(value.strip())
    return None
