"""A service's flags are declared once, on its typed config (trademesh.core.platform.config.flags): for
every service whose ServiceCommand names its `settings`, `trademesh <service>` given no flags
builds the config's own defaults, its --help shows them, and its command.py restates none of them.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import importlib
from dataclasses import MISSING
from pathlib import Path
from typing import Any

import pytest

from trademesh.core.cli import build_parser
from trademesh.core.platform.config.env import (
    SUPERVISOR_API_KEY,
    TELEGRAM_API_KEY,
    TELEGRAM_BOT_TOKEN,
    TELEGRAM_COMMAND_CHAT_IDS,
)
from trademesh.core.platform.config.flags import (
    flag_default,
    flag_name,
    flag_values,
    flagged_fields,
    shown_default,
)
from trademesh.core.platform.service.command import ServiceCommand, load_command
from trademesh.core.platform.service.registry import SERVICES, ServiceEntry

_ROOT = Path(__file__).resolve().parents[2]
# A service's positional arguments (`trademesh venue NAME`).
_REQUIRED = {"venue": ["sim"]}
_SECRETS = {
    TELEGRAM_BOT_TOKEN: "123456:flags",
    TELEGRAM_API_KEY: "tm_flags_telegram",
    TELEGRAM_COMMAND_CHAT_IDS: "42",
    SUPERVISOR_API_KEY: "tm_flags_supervisor",
}


def _declared() -> list[tuple[ServiceEntry, ServiceCommand[Any]]]:
    found = [(entry, load_command(entry)) for entry in SERVICES.values()]
    return [(entry, command) for entry, command in found if command.settings]


_SERVICES = _declared()
_IDS = [entry.name for entry, _ in _SERVICES]


def _parser(name: str) -> argparse.ArgumentParser:
    commands = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    parser = commands.choices[name]
    assert isinstance(parser, argparse.ArgumentParser)
    return parser


def _default(item: dataclasses.Field[Any]) -> Any:
    if item.default is not MISSING:
        return item.default
    assert item.default_factory is not MISSING, item.name
    return item.default_factory()


def test_the_services_that_declare_their_settings_include_the_first_converted() -> None:
    assert {"bridge"} <= set(_IDS)


@pytest.mark.parametrize(("entry", "command"), _SERVICES, ids=_IDS)
def test_no_flags_build_the_configs_defaults(
    entry: ServiceEntry, command: ServiceCommand[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://localhost/trademesh_flags")
    monkeypatch.setenv("TRADEMESH_GATEWAY", "127.0.0.1:8082")  # ingest follows venues or a registry
    # The secrets a service refuses to start without (the Telegram bot's, the Supervisor's).
    for variable, value in _SECRETS.items():
        monkeypatch.setenv(variable, value)
    settings = flagged_fields(command.settings[0])
    assert settings, f"{entry.name}: its config declares no settings"
    args = _parser(entry.name).parse_args(_REQUIRED.get(entry.name, []))
    config = command.config(args)
    for item, _ in settings:
        assert getattr(config, item.name) == _default(item), f"{entry.name}: {item.name}"
    for nested in command.settings[1:]:  # a config within it (the bars' watermark rules): its defaults
        for item, _ in flagged_fields(nested):
            assert flag_values(args, nested)[item.name] == _default(item), f"{nested.__name__}: {item.name}"


@pytest.mark.parametrize(("entry", "command"), _SERVICES, ids=_IDS)
def test_the_help_shows_the_configs_defaults(entry: ServiceEntry, command: ServiceCommand[Any]) -> None:
    actions = {action.dest: action for action in _parser(entry.name)._actions}
    for item, flag in (found for config in command.settings for found in flagged_fields(config)):
        action = actions[(flag.name or item.name).replace("-", "_")]
        assert action.help is not None
        if flag.switch:
            assert action.default is item.default and action.option_strings == [flag_name(item, flag)]
        elif item.default is not MISSING and item.default is not None:
            assert action.default == flag_default(item, flag), f"{entry.name}: {item.name}"
            shown = flag.shown or f"default {shown_default(flag_default(item, flag))}"
            assert shown.replace("%", "%%") in action.help, f"{entry.name}: {item.name}: {action.help}"
        elif item.default is MISSING:  # computed: the help says what, the config computes it
            assert action.default is None and flag.shown is not None, f"{entry.name}: {item.name}"


def _restated(tree: ast.AST, settings: set[str], fields: set[str]) -> list[str]:
    """The add_argument calls in a module that add one of the config's settings again, or give a
    flag named as one of the config's fields a default literal (the config declares its default)."""
    found = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        if node.func.attr != "add_argument":
            continue
        flags = [
            arg.value for arg in node.args if isinstance(arg, ast.Constant) and isinstance(arg.value, str)
        ]
        found += [f"{flag} is added by hand" for flag in flags if flag in settings]
        literal = any(
            word.arg == "default" and isinstance(word.value, ast.Constant) and word.value.value is not None
            for word in node.keywords
        )
        found += [f"{flag} has a default literal" for flag in flags if literal and flag in fields]
    return found


@pytest.mark.parametrize(("entry", "command"), _SERVICES, ids=_IDS)
def test_the_command_module_restates_no_setting(entry: ServiceEntry, command: ServiceCommand[Any]) -> None:
    settings = {flag_name(item, flag) for config in command.settings for item, flag in flagged_fields(config)}
    fields = {
        "--" + item.name.replace("_", "-")
        for config in command.settings
        for item in dataclasses.fields(config)
    }
    module = importlib.import_module(entry.module)
    assert module.__file__ is not None
    # The function that adds the service's flags (its tools' own parsers are other commands).
    name = command.add_arguments.__name__
    tree = ast.parse(Path(module.__file__).read_text())
    adds = [node for node in ast.walk(tree) if isinstance(node, ast.FunctionDef) and node.name == name]
    assert len(adds) == 1, f"{entry.module}: {name}"
    assert _restated(adds[0], settings, fields) == [], f"{Path(module.__file__).relative_to(_ROOT)}"


def test_the_leader_flags_default_is_the_leases() -> None:
    from trademesh.core.platform.replicas.leader import DEFAULT_TTL_MS
    from trademesh.core.platform.service.command import LEADER_TTL_MS

    assert LEADER_TTL_MS == DEFAULT_TTL_MS


def _deployed_commands() -> list[tuple[str, list[str]]]:
    """(where, argv) of every trademesh service docker-compose.yml and the Kubernetes manifests run."""
    import yaml

    found = []
    compose = yaml.safe_load((_ROOT / "docker-compose.yml").read_text())
    for name, service in compose["services"].items():
        command = service.get("command")
        if isinstance(command, list) and command and command[0] in _IDS:
            found.append((f"docker-compose.yml: {name}", [str(word) for word in command]))
    for path in sorted((_ROOT / "ops" / "k8s").rglob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            spec = (document or {}).get("spec", {}).get("template", {}).get("spec", {})
            for container in spec.get("containers", []):
                args = container.get("args")
                if args and args[0] in _IDS:
                    found.append((str(path.relative_to(_ROOT)), [str(word) for word in args]))
    return found


def test_compose_and_kubernetes_restate_no_default() -> None:
    """A setting compose or a manifest gives is one it changes: restating a default would leave
    the deployment behind when the config's default moves."""
    commands = {entry.name: command for entry, command in _SERVICES}
    deployed = _deployed_commands()
    assert len({argv[0] for _, argv in deployed}) >= 5, deployed  # the files were read
    restated = []
    for where, argv in deployed:
        args = _parser(argv[0]).parse_args(argv[1:])
        for config in commands[argv[0]].settings:
            for item, flag in flagged_fields(config):
                name = flag_name(item, flag)
                given = name in argv or any(word.startswith(f"{name}=") for word in argv)
                value = getattr(args, (flag.name or item.name).replace("-", "_"))
                if given and not flag.switch and value == flag_default(item, flag):
                    restated.append(f"{where}: {name} {flag_default(item, flag)}")
    assert restated == []
