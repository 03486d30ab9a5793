"""The Supervisor and the Telegram bot, run alone with their defaults, reach the gateway run alone
with its: their --gateway-url's default is the gateway's port from the registry (issue 57 item 3;
it was 8080 beside a gateway on 8081)."""

from __future__ import annotations

import urllib.parse

import pytest

from trademesh.core.cli import build_parser
from trademesh.core.platform.service.command import load_command
from trademesh.core.platform.service.registry import service_entry


def _gateway_port() -> int:
    entry = service_entry("gateway")
    args = build_parser().parse_args(["gateway"])
    return load_command(entry).port(entry, args)


@pytest.mark.parametrize("service", ["supervisor", "telegram"])
def test_the_default_gateway_url_is_where_the_gateway_listens_by_default(service: str) -> None:
    url = urllib.parse.urlsplit(build_parser().parse_args([service]).gateway_url)
    assert (url.scheme, url.hostname, url.port) == ("http", "127.0.0.1", _gateway_port())
