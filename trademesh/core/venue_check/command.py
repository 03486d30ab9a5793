"""`trademesh venue-check HOST:PORT`: the conformance kit from the command line.

Exit codes: 0 the venue conforms, 1 it does not, 2 bad usage (a bad option, an address where no
venue answers). Tokens only from the environment: TRADEMESH_TOKEN and TRADEMESH_TRADE_TOKEN, or
the variables --token-env / --trade-token-env name (never a secret on the command line).

Imports stay light (argparse): the kit and gRPC load only when the command runs.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from trademesh.core.platform.config.env import TOKEN, TRADE_TOKEN
from trademesh.core.platform.config.flags import seconds_up_to

__all__ = ["add_venue_check_parser", "kit_options", "run_command"]


def _names(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


def add_venue_check_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "venue-check",
        help="check that a running venue (any language) keeps the venue contract (docs/venue-contract.md)",
        description="Run the venue contract's checks against a running venue. It places and cancels "
        "tiny orders on the instrument it trades, trips the dead-man switch and drains the venue "
        "last: point it at a venue no one else trades on.",
    )
    parser.add_argument("address", nargs="?", help="HOST:PORT of the venue's gRPC server")
    parser.add_argument(
        "--symbol", help="the instrument to trade (default: the first tradable one it streams)"
    )
    parser.add_argument("--only", type=_names, action="extend", default=[], metavar="CHECK[,CHECK]",
                        help="run only these checks (repeatable; --list shows them)")  # fmt: skip
    parser.add_argument("--skip", type=_names, action="extend", default=[], metavar="CHECK[,CHECK]",
                        help="leave these checks out (--skip drain keeps the venue serving)")  # fmt: skip
    parser.add_argument("--token-env", default=TOKEN, metavar="VAR",
                        help=f"the variable holding the mesh token (default {TOKEN})")  # fmt: skip
    parser.add_argument("--trade-token-env", default=TRADE_TOKEN, metavar="VAR",
                        help=f"the variable holding the trading credential ({TRADE_TOKEN})")  # fmt: skip
    parser.add_argument("--timeout-s", type=seconds_up_to(600), default=10.0,
                        help="the deadline of each call the kit makes (default 10)")  # fmt: skip
    parser.add_argument("--json", action="store_true", help="the report as JSON on stdout")
    parser.add_argument("--list", action="store_true", help="list the checks and exit")
    parser.set_defaults(run=run_command)


def _address(text: str | None) -> str:
    from trademesh.core.venue_check.results import BadTarget

    if text is None:
        raise BadTarget("name the venue's address: trademesh venue-check HOST:PORT")
    host, colon, port = text.rpartition(":")
    if not colon or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise BadTarget(f"{text!r} is not HOST:PORT")
    return text


def kit_options(
    address: str, token_env: str, trade_token_env: str, symbol: str | None, timeout_s: float
) -> Any:
    """The kit's options, its tokens read from the variables named; BadTarget when one is unset."""
    from trademesh.core.platform.config.env import token_secret
    from trademesh.core.venue_check.kit import KitOptions
    from trademesh.core.venue_check.results import BadTarget

    tokens = []
    for variable, what, flag in (
        (token_env, "mesh token", "--token-env"),
        (trade_token_env, "trading credential", "--trade-token-env"),
    ):
        value = token_secret(variable)
        if value is None:
            raise BadTarget(
                f"the kit needs the venue's {what}: set {variable} (or name the variable that "
                f"holds it with {flag})"
            )
        tokens.append(value)
    return KitOptions(
        _address(address), tokens[0], tokens[1], symbol, timeout_s,
        mesh_token_source=token_env, trade_token_source=trade_token_env,
    )  # fmt: skip


def run_command(args: argparse.Namespace) -> None:
    import asyncio

    from trademesh.core.venue_check.registry import CHECKS, select
    from trademesh.core.venue_check.report import as_json, as_text
    from trademesh.core.venue_check.results import BadTarget
    from trademesh.core.venue_check.runner import run_kit

    if args.list:
        for check in CHECKS.values():
            print(f"{check.name:<22} {check.summary}")
        return
    try:
        checks = select(args.only, args.skip)
        options = kit_options(args.address, args.token_env, args.trade_token_env, args.symbol, args.timeout_s)
        report = asyncio.run(run_kit(options, checks))
    except BadTarget as bad:
        print(f"trademesh venue-check: {bad}", file=sys.stderr)
        raise SystemExit(2) from None
    sys.stdout.write(as_json(report) if args.json else as_text(report))
    raise SystemExit(0 if report.conforms else 1)
