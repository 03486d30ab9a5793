"""The CLI builds in full only the parser of the command it runs (trademesh.core.cli.build_parser):
the others are their names and one-line helps, so a service's start imports no other service."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

import pytest

from trademesh.core.cli import _TOOLS, build_parser, main
from trademesh.core.platform.service.registry import SERVICES


def _commands(parser: argparse.ArgumentParser) -> argparse._SubParsersAction[argparse.ArgumentParser]:
    return next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))


def test_the_listing_is_the_full_parsers() -> None:
    # `trademesh --help` shows every command with the help its own parser gives it.
    assert build_parser("").format_help() == build_parser().format_help()


def test_each_tools_help_is_its_parsers() -> None:
    full = {c.dest: c.help for c in _commands(build_parser())._choices_actions}
    assert {name: summary for name, (_, _, summary) in _TOOLS.items()} == {n: full[n] for n in _TOOLS}


@pytest.mark.parametrize("command", [*SERVICES, *_TOOLS, "up", "health"])
def test_a_commands_parser_is_the_full_ones(command: str) -> None:
    lazy = _commands(build_parser(command)).choices[command]
    assert lazy.format_help() == _commands(build_parser()).choices[command].format_help()


def test_a_service_start_imports_no_other_command() -> None:
    probe = (
        "import json, sys\n"
        "from trademesh.core.cli import build_parser\n"
        "build_parser('ingest').parse_args(['ingest'])\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    loaded = set(
        json.loads(subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True).stdout)
    )
    others = [e.module for e in SERVICES.values() if e.name != "ingest"] + [m for m, _, _ in _TOOLS.values()]
    assert SERVICES["ingest"].module in loaded
    assert [m for m in others if m in loaded] == []


def test_an_unknown_command_is_named(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["nope"])
    assert exit_.value.code == 2
    assert "invalid choice: 'nope'" in capsys.readouterr().err
