"""A run's process, forked from the hub's run server (trademesh.core.backtest.hub.child): `trademesh
backtest ...` as the CLI runs it, with the environment and the output the hub gives it.

The run server imports this module once, and with it what a run needs (trademesh.core.backtest.preload:
the engine, the store, the advisor's models' classes): each run forked from it starts with them
imported, where an exec'd `python -m trademesh.core.cli backtest` imported them again (1.3 of a run's
2.2 CPU s over the tests' 20 minutes of history). Its stdout and stderr come as descriptors
passed with the fork (trademesh.core.backtest.hub.child); its whole environment as the request's.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Mapping, Sequence

import trademesh.core.backtest.preload  # noqa: F401 (the run's modules and the models' classes, imported once)
from trademesh.core.backtest.command import add_backtest_parser
from trademesh.core.platform.errors import TrademeshError

__all__ = ["main", "run"]


def run(argv: Sequence[str], env: Mapping[str, str], stdout: int, stderr: int) -> None:
    """In the forked process: the command `argv` (the CLI's arguments, "backtest" first) with
    `env` as its whole environment and its output on `stdout` and `stderr`; its exit code as the
    CLI's (multiprocessing exits with it)."""
    for fd, standard in ((stdout, 1), (stderr, 2)):
        os.dup2(fd, standard)
        os.close(fd)
    os.environ.clear()
    os.environ.update(env)
    code = main(argv)
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    sys.exit(code)


def main(argv: Sequence[str]) -> int:
    """`trademesh backtest ...` as trademesh.core.cli runs it: an error the run raises is one line on stderr
    and exit code 2."""
    parser = argparse.ArgumentParser(prog="trademesh")
    add_backtest_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    try:
        args.run(args)
    except TrademeshError as exc:
        print(f"trademesh: {exc}", file=sys.stderr)
        return 2
    return 0
