"""A service's settings declared once, on its typed config: the flags come from the dataclass.

A config field that is a command-line flag is declared with `setting(default, help=...)` (its
argparse type, flag name, metavar and how its default reads in the help are optional); the field
keeps its default, and the flag takes the same one:

    @dataclass(frozen=True)
    class BridgeConfig:
        redis_url: str
        queue_batches: int = setting(256, type=positive_int, help="messages queued per subscriber")

`add_flags(parser, BridgeConfig)` adds `--queue-batches` (default 256, its help ending
"(default 256)", or the default where the help says `{default}`); `flag_values(args, BridgeConfig)`
gives the parsed flags as the config's keyword arguments, so `BridgeConfig(url, **flag_values(args,
BridgeConfig))` is the config, and with no flags given it equals `BridgeConfig(url)`. A setting whose
default is computed (a default_factory: the host's name) has no default on its flag: given no flag,
its keyword is left out and the config computes it.

Light (dataclasses and argparse only): the CLI builds every service's parser at start.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable
from dataclasses import MISSING, Field
from decimal import Decimal
from typing import Any, Protocol

__all__ = [
    "ArgumentAdder",
    "Flag",
    "add_flags",
    "argument_type",
    "flag_default",
    "flag_name",
    "flag_of",
    "flag_values",
    "flagged_fields",
    "seconds_up_to",
    "setting",
    "shown_default",
]

_KEY = "trademesh.flag"


@dataclasses.dataclass(frozen=True)
class Flag:
    """How a config field is a flag: its help, argparse type, name and metavar."""

    help: str
    # The argparse type: the text given becomes the field's value (a str when None).
    type: Callable[[str], Any] | None = None
    # The flag's name without its dashes; None: the field's name, "_" as "-".
    name: str | None = None
    metavar: str | None = None
    # How the default reads in the help when not shown_default(default) (a computed one's: "<hostname>").
    shown: str | None = None
    # The values it takes, when a few names.
    choices: tuple[str, ...] | None = None
    # The field's value per unit the flag is given in (1_000_000: a flag in ms, a field in ns;
    # 0.001: a flag in ms, a field in s).
    scale: int | float | None = None
    # An on/off setting: a default off is turned on by --name, a default on off by --no-name.
    switch: bool = False


def setting(
    default: Any = MISSING,
    *,
    help: str,
    type: Callable[[str], Any] | None = None,
    flag: str | None = None,
    metavar: str | None = None,
    shown: str | None = None,
    default_factory: Callable[[], Any] | Any = MISSING,
    choices: tuple[str, ...] | None = None,
    scale: int | float | None = None,
    switch: bool = False,
) -> Any:
    """A config field that is also a flag (dataclasses.field with the flag in its metadata)."""
    meta = {_KEY: Flag(help, type, flag, metavar, shown, choices, scale, switch)}
    if default_factory is not MISSING:
        return dataclasses.field(default_factory=default_factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def flag_of(item: Field[Any]) -> Flag | None:
    flag = item.metadata.get(_KEY)
    return flag if isinstance(flag, Flag) else None


def argument_type(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    """An argparse type from a parser that raises the project's InvalidArgument (a timeframe's
    label): argparse reports it as it does a bad flag."""
    from trademesh.core.platform.errors import InvalidArgument

    def checked(text: str) -> Any:
        try:
            return parse(text)
        except InvalidArgument as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    checked.__name__ = getattr(parse, "__name__", "value")
    return checked


def seconds_up_to(most_s: float) -> Callable[[str], float]:
    """An argparse type: a number of seconds above 0 and at most `most_s`."""

    def seconds(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = -1.0
        if not 0 < value <= most_s:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds in (0, {most_s:g}]")
        return value

    return seconds


def _or_text(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    def value(text: str) -> Any:
        try:
            return parse(text)
        except (ValueError, TypeError):
            return text

    value.__name__ = getattr(parse, "__name__", "value")
    return value


def flagged_fields(config: type[Any]) -> list[tuple[Field[Any], Flag]]:
    """The config's fields that are flags, with their Flag, in declaration order."""
    found = []
    for item in dataclasses.fields(config):
        flag = flag_of(item)
        if flag is not None:
            found.append((item, flag))
    return found


def shown_default(value: Any) -> str:
    """A default as the help shows it: 5.0 as 5, 0.25 as 0.25, a Decimal as written, a
    timeframe (anything with a label) as its label."""
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, Decimal):
        return format(value, "f")
    label = getattr(value, "label", None)
    return label if isinstance(label, str) else str(value)


def flag_default(item: Field[Any], flag: Flag) -> Any:
    """The flag's default: the field's, in the flag's unit; None for a computed one."""
    if item.default is MISSING or item.default is None or flag.scale is None:
        return None if item.default is MISSING else item.default
    if isinstance(item.default, int) and isinstance(flag.scale, int) and item.default % flag.scale == 0:
        return item.default // flag.scale
    return _scaled(item.default, 1 / flag.scale)


def _scaled(value: Any, scale: float) -> Any:
    """value * scale, a fraction's as a division by its inverse (10000 ms * 0.001: 10.0 s exactly)."""
    return value / round(1 / scale) if scale < 1 else value * scale


def _help(item: Field[Any], flag: Flag) -> str:
    if flag.switch:
        return flag.help
    if flag.shown is not None:
        shown: str | None = flag.shown
    elif item.default is MISSING or item.default is None:
        shown = None
    else:
        shown = shown_default(flag_default(item, flag))
    if shown is None:
        return flag.help
    shown = shown.replace("%", "%%")  # argparse formats the help with %
    if "{default}" in flag.help:
        return flag.help.replace("{default}", shown)
    return f"{flag.help} (default {shown})"


def _dest(item: Field[Any], flag: Flag) -> str:
    return (flag.name or item.name).replace("-", "_")


def flag_name(item: Field[Any], flag: Flag) -> str:
    """The flag as given: --queue-size; a switch on by default, --no-<name>."""
    name = flag.name or item.name.replace("_", "-")
    return f"--no-{name}" if flag.switch and item.default is True else f"--{name}"


class ArgumentAdder(Protocol):
    """A parser or one of its argument groups."""

    def add_argument(self, *names: str, **options: Any) -> Any: ...


def add_flags(
    parser: ArgumentAdder,
    config: type[Any],
    *,
    skip: tuple[str, ...] = (),
    only: tuple[str, ...] | None = None,
) -> None:
    """A flag for each of the config's settings: but the fields named in `skip`, or only those in
    `only` (a service that shows some of them elsewhere in its help)."""
    for item, flag in flagged_fields(config):
        if item.name in skip or (only is not None and item.name not in only):
            continue
        default = flag_default(item, flag)
        options: dict[str, Any] = {"default": default, "help": _help(item, flag), "dest": _dest(item, flag)}
        if flag.switch:
            options["action"] = "store_false" if default is True else "store_true"
        elif flag.type is not None:
            options["type"] = flag.type
        if flag.metavar is not None:
            options["metavar"] = flag.metavar
        if flag.choices is not None:
            options["choices"] = flag.choices
            if flag.type is not None:  # a name not among them: argparse's "invalid choice" names them
                options["type"] = _or_text(flag.type)
        parser.add_argument(flag_name(item, flag), **options)


def flag_values(args: argparse.Namespace, config: type[Any], *, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    """The parsed settings as the config's keyword arguments (but the fields named in `skip`);
    one with a computed default, not given, is left out (the config computes it)."""
    values: dict[str, Any] = {}
    for item, flag in flagged_fields(config):
        if item.name in skip:
            continue
        value = getattr(args, _dest(item, flag))
        if value is None and item.default is MISSING:
            continue
        values[item.name] = value if value is None or flag.scale is None else _scaled(value, flag.scale)
    return values
