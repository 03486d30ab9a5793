"""gRPC-web wire details: frames, chunked base64 bodies, grpc-timeout, status trailers."""

from __future__ import annotations

import base64

import grpc
import pytest
from google.rpc import status_pb2

from trademesh.core.platform.errors import InvalidArgument
from trademesh.gateway.grpcweb.framing import (
    TRAILER_FLAG,
    data_frame,
    decode_frames,
    request_message,
    trailer_frame,
)
from trademesh.gateway.grpcweb.status import CallStatus, percent_encode
from trademesh.gateway.grpcweb.text import MAX_CHUNKS, decode_text, encode_text
from trademesh.gateway.grpcweb.timeout import parse_timeout


def field_of(error: pytest.ExceptionInfo[InvalidArgument]) -> str:
    return error.value.violations[0].field


def test_a_data_frame_is_flag_zero_then_the_big_endian_length_then_the_bytes() -> None:
    assert data_frame(b"abc") == b"\x00\x00\x00\x00\x03abc"
    assert data_frame(b"") == b"\x00\x00\x00\x00\x00"


def test_a_trailer_frame_holds_header_lines_under_flag_0x80() -> None:
    frame = trailer_frame([("grpc-status", "0"), ("grpc-message", "")])
    block = b"grpc-status: 0\r\ngrpc-message: \r\n"
    assert frame == bytes([TRAILER_FLAG]) + len(block).to_bytes(4, "big") + block


def test_frames_decode_back_in_order() -> None:
    body = data_frame(b"one") + data_frame(b"") + trailer_frame([("grpc-status", "5")])
    frames = decode_frames(body)
    assert [flag for flag, _ in frames] == [0, 0, TRAILER_FLAG]
    assert frames[0][1] == b"one" and frames[1][1] == b""


@pytest.mark.parametrize("body", [b"\x00\x00\x00", b"\x00\x00\x00\x00\x05abc"])
def test_a_body_cut_inside_a_frame_is_invalid(body: bytes) -> None:
    with pytest.raises(InvalidArgument) as error:
        decode_frames(body)
    assert field_of(error) == "body"


def test_a_request_must_hold_exactly_one_uncompressed_message() -> None:
    assert request_message(data_frame(b"msg")) == b"msg"
    with pytest.raises(InvalidArgument, match="exactly one message frame, got 0"):
        request_message(b"")
    with pytest.raises(InvalidArgument, match="exactly one message frame, got 2"):
        request_message(data_frame(b"a") + data_frame(b"b"))
    with pytest.raises(InvalidArgument, match="compressed"):
        request_message(b"\x01\x00\x00\x00\x01x")


def test_text_mode_decodes_a_body_sent_as_several_padded_base64_chunks() -> None:
    frame = data_frame(b"\x0a\x03BTC")
    # Split so that each chunk is padded on its own, as a streaming client sends it.
    chunks = [frame[:4], frame[4:5], frame[5:]]
    body = b"".join(base64.b64encode(chunk) for chunk in chunks)
    assert b"=" in body[:-2], "the test needs padding inside the body"
    assert decode_text(body) == frame


def test_text_mode_ignores_whitespace_and_accepts_an_unpadded_tail() -> None:
    encoded = base64.b64encode(b"hello gateway").rstrip(b"=")
    assert decode_text(encoded[:6] + b"\r\n" + encoded[6:]) == b"hello gateway"


def test_text_mode_takes_up_to_64_padded_chunks_and_refuses_more() -> None:
    """Each padded chunk costs a Python call: a body of 340,000 two-byte chunks held the
    gateway's event loop for a second."""
    assert decode_text(b"AAA=" * MAX_CHUNKS) == b"\0\0" * MAX_CHUNKS
    with pytest.raises(InvalidArgument, match="more than 64 base64 chunks"):
        decode_text(b"AAA=" * (MAX_CHUNKS + 1))


def test_text_mode_rejects_characters_outside_base64() -> None:
    with pytest.raises(InvalidArgument, match="bad base64"):
        decode_text(b"AAA*")


def test_text_mode_encodes_each_response_frame_on_its_own() -> None:
    first, second = data_frame(b"x"), trailer_frame([("grpc-status", "0")])
    stream = encode_text(first) + encode_text(second)
    assert decode_text(stream) == first + second


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("1H", 3600.0),
        ("2M", 120.0),
        ("10S", 10.0),
        ("500m", 0.5),
        ("250u", 250e-6),
        ("99999999n", 0.099999999),
    ],
)
def test_grpc_timeout_units(header: str, seconds: float) -> None:
    assert parse_timeout(header) == pytest.approx(seconds)


@pytest.mark.parametrize("header", ["", "10", "S", "1.5S", "123456789S", "10s", "-1S", "10 S", "1D"])
def test_a_malformed_grpc_timeout_is_invalid_and_names_the_header(header: str) -> None:
    with pytest.raises(InvalidArgument) as error:
        parse_timeout(header)
    assert field_of(error) == "grpc-timeout"
    assert repr(header) in str(error.value)


def test_grpc_message_is_percent_encoded_beyond_printable_ascii() -> None:
    assert percent_encode("plain text: ok") == "plain text: ok"
    assert percent_encode("100% sure") == "100%25 sure"
    assert percent_encode("line\nbreak") == "line%0Abreak"
    assert percent_encode("prix 5€") == "prix 5%E2%82%AC"


def test_status_trailers_carry_code_message_and_details() -> None:
    details = status_pb2.Status(code=3, message="size: must be positive").SerializeToString()
    status = CallStatus(grpc.StatusCode.INVALID_ARGUMENT, "size: must be positive", details)
    trailers = dict(status.trailers())
    assert trailers["grpc-status"] == "3"
    assert trailers["grpc-message"] == "size: must be positive"
    assert base64.b64decode(trailers["grpc-status-details-bin"]) == details


def test_an_ok_status_without_message_sends_only_the_code() -> None:
    assert CallStatus.ok().trailers() == [("grpc-status", "0")]


def test_our_errors_become_statuses_with_field_violations() -> None:
    status = CallStatus.from_error(InvalidArgument.field("grpc-timeout", "bad"))
    assert status.code is grpc.StatusCode.INVALID_ARGUMENT
    assert status.details is not None
    decoded = status_pb2.Status.FromString(status.details)
    assert decoded.code == 3 and decoded.details[0].type_url.endswith("google.rpc.BadRequest")
