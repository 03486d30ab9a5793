"""Several accounts per venue (docs/accounts.md): the account's venue name, its credentials'
variables, its trading credential, its bus streams, and the refusals that name the bad value or
the variables looked for (never their values)."""

from __future__ import annotations

import fnmatch

import pytest

from trademesh.core.domain.accounts import account_name, account_of, account_venue, exchange_of
from trademesh.core.domain.model import Channel
from trademesh.core.platform.bus.names import (
    EXECUTION_STREAMS,
    MARKET_STREAMS,
    executions_stream,
    market_stream,
    parse_executions_stream,
    parse_market_stream,
    venue_name,
)
from trademesh.core.platform.config.env import TRADE_TOKEN, trade_token_variable, venue_variable
from trademesh.core.platform.errors import InvalidArgument
from trademesh.core.platform.logs.stream.scrubber import Scrubber
from trademesh.core.platform.rpc.client import trade_auth_metadata

SECRET = "desk-a-trade-credential-9c1e"


@pytest.mark.parametrize("name", ["desk-a", "a", "0", "fund-7", "x" * 24])
def test_an_account_name_of_lower_case_letters_digits_and_dashes_is_taken(name: str) -> None:
    assert account_name(name) == name
    assert account_venue("binance", name) == f"binance.{name}"
    assert exchange_of(f"binance.{name}") == "binance" and account_of(f"binance.{name}") == name


@pytest.mark.parametrize("name", ["", "Desk-A", "desk_a", "desk.a", "-desk", "desk a", "x" * 25, "dé"])
def test_a_bad_account_name_is_refused_naming_it(name: str) -> None:
    with pytest.raises(InvalidArgument, match="is not an account name") as refused:
        account_name(name)
    assert repr(name) in str(refused.value)


def test_a_venue_without_an_account_keeps_its_own_name() -> None:
    assert account_venue("binance", None) == "binance"
    assert exchange_of("binance") == "binance" and account_of("binance") is None


def test_an_accounts_credentials_are_its_exchanges_variables_with_the_account_after_two_underscores() -> None:
    assert venue_variable("binance.desk-a", "API_KEY") == "TRADEMESH_BINANCE__DESK_A_API_KEY"
    assert venue_variable("okx-swap.fund-7", "PASSPHRASE") == "TRADEMESH_OKX_SWAP__FUND_7_PASSPHRASE"
    assert venue_variable("binance", "API_KEY") == "TRADEMESH_BINANCE_API_KEY"  # unchanged


def test_an_account_takes_its_own_trading_credential_only_when_it_is_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(TRADE_TOKEN, "mesh-wide-trade-credential")
    monkeypatch.delenv("TRADEMESH_SIM__DESK_A_TRADE_TOKEN", raising=False)
    assert trade_token_variable("sim.desk-a") == TRADE_TOKEN
    assert trade_auth_metadata("sim.desk-a") == (("authorization", "Bearer mesh-wide-trade-credential"),)
    monkeypatch.setenv("TRADEMESH_SIM__DESK_A_TRADE_TOKEN", SECRET)
    assert trade_token_variable("sim.desk-a") == "TRADEMESH_SIM__DESK_A_TRADE_TOKEN"
    assert trade_auth_metadata("sim.desk-a") == (("authorization", f"Bearer {SECRET}"),)
    # Another account, and the plain venue, keep the mesh-wide one.
    assert trade_auth_metadata("sim.desk-b") == (("authorization", "Bearer mesh-wide-trade-credential"),)
    assert trade_auth_metadata("sim") == trade_auth_metadata() == trade_auth_metadata("sim.desk-b")


def test_an_accounts_trading_credential_is_hidden_from_log_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRADEMESH_SIM__DESK_A_TRADE_TOKEN", SECRET)
    monkeypatch.setenv("TRADEMESH_BINANCE__DESK_A_API_SECRET", "desk-a-api-secret-41")
    scrub = Scrubber.from_environment()
    assert scrub(f"token {SECRET} secret desk-a-api-secret-41") == "token *** secret ***"


def test_an_accounts_streams_carry_its_venue_name_and_parse_back() -> None:
    assert venue_name("sim.desk-a") == "sim.desk-a"
    stream = market_stream("sim.desk-a", Channel.TRADES)
    assert stream == "md.{sim.desk-a}.trades" and fnmatch.fnmatchcase(stream, MARKET_STREAMS)
    assert parse_market_stream(stream) == ("sim.desk-a", Channel.TRADES)
    executions = executions_stream("binance.desk-b")
    assert executions == "exec.{binance.desk-b}" and fnmatch.fnmatchcase(executions, EXECUTION_STREAMS)
    assert parse_executions_stream(executions) == "binance.desk-b"


@pytest.mark.parametrize("name", ["sim.", "sim.Desk", "sim.desk.a", ".desk", "sim.desk_a", "sim." + "x" * 25])
def test_a_venue_name_with_a_bad_account_part_is_refused(name: str) -> None:
    with pytest.raises(InvalidArgument, match="is not a venue name"):
        venue_name(name)


def test_the_venue_command_refuses_a_bad_account_naming_it(capsys: pytest.CaptureFixture[str]) -> None:
    from trademesh.core.cli import main

    with pytest.raises(SystemExit) as stopped:
        main(["venue", "sim", "--account", "Desk_A", "--port", "0"])
    assert stopped.value.code == 2
    said = capsys.readouterr().err
    assert "argument --account: 'Desk_A' is not an account name" in said


def test_a_live_account_without_credentials_names_the_variables_it_looked_for(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from trademesh.core.cli import main

    monkeypatch.setenv("TRADEMESH_BINANCE__DESK_A_API_KEY", "desk-a-key-value-13")
    monkeypatch.delenv("TRADEMESH_BINANCE__DESK_A_API_SECRET", raising=False)
    monkeypatch.setenv("TRADEMESH_BINANCE_API_SECRET", "the-plain-venues-secret-88")  # not the account's
    assert main(["venue", "binance", "--account", "desk-a", "--port", "0", "--metrics-port", "-1"]) == 2
    said = capsys.readouterr().err
    assert (
        "account desk-a at binance has no credentials: looked for TRADEMESH_BINANCE__DESK_A_API_KEY "
        "and TRADEMESH_BINANCE__DESK_A_API_SECRET; not set: TRADEMESH_BINANCE__DESK_A_API_SECRET"
    ) in said
    assert "desk-a-key-value-13" not in said and "the-plain-venues-secret-88" not in said


def test_a_live_accounts_venue_is_named_for_the_account_and_reads_its_own_credentials(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from trademesh.venues.registry import create_venue

    monkeypatch.setenv("TRADEMESH_BINANCE__DESK_B_API_KEY", "desk-b-key")
    monkeypatch.setenv("TRADEMESH_BINANCE__DESK_B_API_SECRET", "desk-b-secret")
    venue = create_venue("binance", None, None, "desk-b")
    assert venue.name == "binance.desk-b"


def test_a_sim_account_names_its_instruments_for_the_account() -> None:
    from trademesh.venues.registry import create_venue

    venue = create_venue("sim", None, None, "desk-a")
    assert venue.name == "sim.desk-a"
    assert {i.venue for i in venue.instruments()} == {"sim.desk-a"}
    assert {i.venue for i in create_venue("sim", None).instruments()} == {"sim"}


def test_the_venue_command_takes_an_accounts_own_trading_credential(monkeypatch: pytest.MonkeyPatch) -> None:
    from trademesh.core.cli import build_parser
    from trademesh.venues.command import COMMAND, TRADING

    assert COMMAND.privileged_of is not None
    args = build_parser().parse_args(["venue", "sim", "--account", "desk-a"])
    monkeypatch.delenv("TRADEMESH_SIM__DESK_A_TRADE_TOKEN", raising=False)
    assert COMMAND.privileged_of(args) == TRADING
    monkeypatch.setenv("TRADEMESH_SIM__DESK_A_TRADE_TOKEN", SECRET)
    own = COMMAND.privileged_of(args)
    assert own is not None and own.variable == "TRADEMESH_SIM__DESK_A_TRADE_TOKEN"
    assert own.methods == TRADING.methods
    plain = build_parser().parse_args(["venue", "sim"])
    assert COMMAND.privileged_of(plain) == TRADING


def test_a_paper_venue_refuses_an_account_naming_it(capsys: pytest.CaptureFixture[str]) -> None:
    from trademesh.core.cli import main

    assert main(["venue", "binance", "--paper", "--account", "desk-a", "--port", "0"]) == 2
    said = capsys.readouterr().err
    assert "account: desk-a is an account at the exchange: a --paper venue trades none" in said
