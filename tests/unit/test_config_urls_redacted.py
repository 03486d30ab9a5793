"""A URL from configuration in an error is redacted (issue 57 item 9): the Supervisor's and the
bot's gateway (MeshTools), the Bot API's base URL, a URL checked at start; and what a start-time
check of a URL or a chat id says."""

from __future__ import annotations

import aiohttp
import pytest

from trademesh.core.platform.config.env import chat_id, notice_chat
from trademesh.core.platform.errors import InvalidArgument, TrademeshError
from trademesh.core.platform.logs.redact import check_http_url
from trademesh.core.platform.mesh_tools import MeshTools
from trademesh.core.telegram.bot_api import BotApi

PASSWORD = "gw-Sentinel-pw"
NOWHERE = f"http://ops:{PASSWORD}@127.0.0.1:1"  # nothing listens on port 1


async def test_the_gateways_password_is_not_in_mesh_tools_errors() -> None:
    with pytest.raises(TrademeshError) as caught:
        await MeshTools(NOWHERE, "key", timeout_s=5).call("inspector_state")
    assert PASSWORD not in str(caught.value)
    assert "http://ops:***@127.0.0.1:1/mcp" in str(caught.value)


async def test_the_bot_apis_password_is_not_in_its_errors() -> None:
    async with aiohttp.ClientSession() as session:
        with pytest.raises(TrademeshError) as caught:
            await BotApi(NOWHERE, "123:token", session).send(1, "hello")
    assert PASSWORD not in str(caught.value) and "123:token" not in str(caught.value)


@pytest.mark.parametrize(
    "url",
    [f"ftp://ops:{PASSWORD}@gw", f"http://ops:{PASSWORD}@gw:0", f"http://ops:{PASSWORD}@/x", "gw:8081"],
)
def test_a_url_that_is_not_http_is_refused_naming_the_setting_redacted(url: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        check_http_url(url, "gateway-url")
    (violation,) = caught.value.violations
    assert violation.field == "gateway-url" and "is not an http:// or https:// URL" in violation.description
    assert PASSWORD not in violation.description


def test_a_variables_url_is_not_shown_at_all() -> None:
    with pytest.raises(InvalidArgument) as caught:
        check_http_url("api.telegram.org/secret-path", "TRADEMESH_TELEGRAM_BASE_URL", shown=False)
    assert "secret" not in caught.value.violations[0].description
    assert check_http_url("https://proxy.example/tg/", "x") == "https://proxy.example/tg"


@pytest.mark.parametrize("text", ["1_000", "+5", "", "12 34", "١٢٣", "0", "1" * 17, "@me"])
def test_a_chat_id_is_a_whole_number_written_plainly(text: str) -> None:
    with pytest.raises(InvalidArgument, match="TRADEMESH_TELEGRAM_CHAT_ID"):
        chat_id(text, "TRADEMESH_TELEGRAM_CHAT_ID")


def test_chat_ids_and_channel_names() -> None:
    assert chat_id("-1001234567890", "x") == -1001234567890
    assert notice_chat("@desk_alerts", "x") == "@desk_alerts"
    assert notice_chat("42", "x") == "42"
    with pytest.raises(InvalidArgument):
        notice_chat("@ab", "x")
