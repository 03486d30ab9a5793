"""A raw HTTP/2 gRPC call over a plain socket: any bytes in :path (NUL, non-UTF-8), which grpc's
own client would not send. Headers go out as HPACK literals (no table, no Huffman); the
answer is not decoded: the call ends when the server ends the stream, resets it or the
connection.
"""

from __future__ import annotations

import socket
import struct

__all__ = ["grpc_call"]

_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
_FRAME_HEAD = struct.Struct(">I B B I")  # length (24 bits, packed with the type), type, flags, stream
_DATA, _HEADERS, _RST_STREAM, _SETTINGS, _PING, _GOAWAY = 0x0, 0x1, 0x3, 0x4, 0x6, 0x7
_END_STREAM, _END_HEADERS, _ACK = 0x1, 0x4, 0x1
_STREAM = 1


def _frame(kind: int, flags: int, stream: int, payload: bytes) -> bytes:
    return len(payload).to_bytes(3, "big") + bytes([kind, flags]) + stream.to_bytes(4, "big") + payload


def _integer(value: int, prefix_bits: int) -> bytes:
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([value])
    out = [limit]
    value -= limit
    while value >= 128:
        out.append(value % 128 + 128)
        value //= 128
    out.append(value)
    return bytes(out)


def _literal(name: bytes, value: bytes) -> bytes:
    """A header field as an HPACK literal without indexing, new name, no Huffman coding."""
    return b"\x00" + _integer(len(name), 7) + name + _integer(len(value), 7) + value


def grpc_call(port: int, path: bytes, message: bytes, timeout_s: float = 10.0) -> str:
    """One unary call of `path` on 127.0.0.1:`port`; how it ended: "end", "reset", "goaway" or
    "closed"."""
    headers = [
        (b":method", b"POST"),
        (b":scheme", b"http"),
        (b":path", path),
        (b":authority", b"127.0.0.1"),
        (b"content-type", b"application/grpc"),
        (b"te", b"trailers"),
    ]
    block = b"".join(_literal(name, value) for name, value in headers)
    body = struct.pack(">BI", 0, len(message)) + message
    with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as sock:
        sock.sendall(
            _PREFACE
            + _frame(_SETTINGS, 0, 0, b"")
            + _frame(_HEADERS, _END_HEADERS, _STREAM, block)
            + _frame(_DATA, _END_STREAM, _STREAM, body)
        )
        return _until_ended(sock)


def _until_ended(sock: socket.socket) -> str:
    buffer = b""
    while True:
        while len(buffer) >= 9:
            length = int.from_bytes(buffer[:3], "big")
            if len(buffer) < 9 + length:
                break
            kind, flags, stream = buffer[3], buffer[4], int.from_bytes(buffer[5:9], "big") & 0x7FFFFFFF
            payload, buffer = buffer[9 : 9 + length], buffer[9 + length :]
            if kind == _SETTINGS and not flags & _ACK:
                sock.sendall(_frame(_SETTINGS, _ACK, 0, b""))
            elif kind == _PING and not flags & _ACK:
                sock.sendall(_frame(_PING, _ACK, 0, payload))
            elif kind == _GOAWAY:
                return "goaway"
            elif stream == _STREAM and kind == _RST_STREAM:
                return "reset"
            elif stream == _STREAM and kind in (_HEADERS, _DATA) and flags & _END_STREAM:
                return "end"
        data = sock.recv(65536)
        if not data:
            return "closed"
        buffer += data
