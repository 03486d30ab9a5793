"""`trademesh bridge`: serve the bus live over gRPC (LiveData)."""

from __future__ import annotations

import argparse

import uvloop

from core.bridge.app import BridgeOptions, serve_bridge
from core.env import redis_url

__all__ = ["add_arguments", "run"]

_DEFAULTS = BridgeOptions(redis_url="")


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--queue-batches",
        type=_positive_int,
        default=_DEFAULTS.queue_batches,
        help="messages queued per subscriber before it is conflated or disconnected "
        f"(default {_DEFAULTS.queue_batches})",
    )
    parser.add_argument(
        "--group",
        default=_DEFAULTS.group,
        help=f"consumer group on the bus; every bridge replica needs its own (default {_DEFAULTS.group})",
    )
    parser.add_argument(
        "--discover-s",
        type=_positive_float,
        default=_DEFAULTS.discover_s,
        help=f"seconds between looks for new bus streams (default {_DEFAULTS.discover_s})",
    )
    parser.add_argument(
        "--lookback-entries",
        type=_positive_int,
        default=_DEFAULTS.lookback_entries,
        help="at start, entries per book stream to look back for the latest snapshots "
        f"(default {_DEFAULTS.lookback_entries})",
    )


def run(args: argparse.Namespace) -> None:
    options = BridgeOptions(
        redis_url=redis_url(args.redis_url),
        group=args.group,
        queue_batches=args.queue_batches,
        discover_s=args.discover_s,
        lookback_entries=args.lookback_entries,
    )
    uvloop.run(serve_bridge(args.server_options, options))
