"""Log lines (trademesh.core.platform.logs.setup): JSON with the service and the structured fields known where
a record is made."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Iterator

import pytest

from trademesh.core.platform.errors import InvalidArgument
from trademesh.core.platform.logs.setup import JsonFormatter, bind_log_fields, log_fields, setup_logging


@pytest.fixture
def lines() -> Iterator[io.StringIO]:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter("venue/sim"))
    logger = logging.getLogger("test.logs")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    yield out
    logger.removeHandler(handler)


def _records(out: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_a_json_line_has_the_service_message_and_extra_fields(lines: io.StringIO) -> None:
    logging.getLogger("test.logs").warning("book resync %s", "BTC/USDT", extra={"symbol": "BTC/USDT"})
    (record,) = _records(lines)
    assert record["service"] == "venue/sim" and record["level"] == "WARNING"
    assert record["message"] == "book resync BTC/USDT" and record["symbol"] == "BTC/USDT"
    assert record["logger"] == "test.logs" and str(record["ts"]).endswith("+00:00")


def test_fields_bound_in_a_block_or_a_task_reach_its_records_only(lines: io.StringIO) -> None:
    log = logging.getLogger("test.logs")

    async def follower() -> None:
        bind_log_fields(stream="md.{sim}.trades")
        log.info("in the task")

    with log_fields(venue="sim"):
        asyncio.run(follower())
        log.info("in the block")
    log.info("outside")
    task, block, outside = _records(lines)
    assert (task["venue"], task["stream"]) == ("sim", "md.{sim}.trades")
    assert block["venue"] == "sim" and "stream" not in block
    assert "venue" not in outside


def test_an_exception_is_one_json_line_with_its_traceback(lines: io.StringIO) -> None:
    try:
        raise ValueError("bad frame")
    except ValueError:
        logging.getLogger("test.logs").exception("decode failed")
    (record,) = _records(lines)
    assert "ValueError: bad frame" in str(record["exception"]) and "Traceback" in str(record["exception"])


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        ("TRADEMESH_LOG_FORMAT", "xml", "'xml' is not one of text, json"),
        ("TRADEMESH_LOG_LEVEL", "LOUD", "'LOUD' is not one of DEBUG, INFO, WARNING, ERROR, CRITICAL"),
    ],
)
def test_an_unknown_format_or_level_is_refused_naming_it(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, says: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(InvalidArgument, match=says) as refused:
        setup_logging("ingest")
    assert refused.value.violations[0].field == variable


def test_grpcs_client_gone_traceback_becomes_one_warning_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRADEMESH_LOG_FORMAT", "json")
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    out = io.StringIO()
    try:
        setup_logging("gateway")
        root.handlers[0].setStream(out)  # type: ignore[attr-defined]
        grpc_log = logging.getLogger("grpc._cython.cygrpc")
        try:
            raise RuntimeError("Failed execute_batch")
        except RuntimeError:
            grpc_log.exception("ExecuteBatchError raised in core by servicer method [%s]", "/a.B/C")
            grpc_log.exception("Unexpected [%s] raised by servicer method [%s]", "KeyError", "/a.B/C")
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
    gone, other = _records(out)
    assert gone["level"] == "WARNING" and "exception" not in gone
    assert gone["message"] == "a call's status was not sent: its client had gone (/a.B/C)"
    assert other["level"] == "ERROR" and "Traceback" in str(other["exception"])


def test_the_mcp_clients_line_per_http_request_is_not_logged_but_its_warnings_are(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The Supervisor's looks through the gateway's tools once logged 15 lines each (the fuzz
    mesh's log check: 9 of one line in a second)."""
    monkeypatch.setenv("TRADEMESH_LOG_FORMAT", "json")
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    out = io.StringIO()
    try:
        setup_logging("supervisor")
        root.handlers[0].setStream(out)  # type: ignore[attr-defined]
        client_log = logging.getLogger("httpx2")
        client_log.info('HTTP Request: POST http://127.0.0.1:8080/mcp "HTTP/1.1 200 OK"')
        client_log.warning("a warning of its own")
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
    assert [record["message"] for record in _records(out)] == ["a warning of its own"]
