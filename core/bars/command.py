"""`trademesh bars`: its flags, its config, its app (core.foundations.command)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from core.foundations.bus.names import market_pattern
from core.foundations.command import MeshView, ServiceCommand, add_redis_argument, positive_int, whole_number
from core.foundations.errors import InvalidArgument
from core.foundations.mesh_config import add_mesh_arguments, venue_args
from core.foundations.model import Channel

if TYPE_CHECKING:
    from core.bars.app import BarsConfig
    from core.bars.watermark import WatermarkRules
    from core.foundations.service import ServiceApp

__all__ = ["COMMAND", "MESH_BACKFILL_S"]

_MAX_BACKFILL_S = 86_400
# `trademesh up`'s: the hour of candles a sim with `history_s` holds before it opens (the demo
# market's 20 minutes, venues/sim/demo.toml), so the advisor's context has its 1m bars at once.
MESH_BACKFILL_S = 3600


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    add_redis_argument(parser)
    add_mesh_arguments(parser)
    parser.add_argument(
        "--lateness-ms", type=int, default=1000,
        help="how late a trade may arrive behind its symbol's latest one (default 1000)",
    )  # fmt: skip
    parser.add_argument(
        "--idle-close-ms", type=int, default=10_000,
        help="close a quiet symbol's bars this far behind its venue's latest trade (default 10000)",
    )  # fmt: skip
    parser.add_argument(
        "--max-future-ms", type=int, default=60_000,
        help="refuse trades stamped this far after their bus entry was written (default 60000)",
    )  # fmt: skip
    parser.add_argument(
        "--backfill-s", type=int, default=0,
        help="on a fresh start, repair each symbol's bars of this many seconds before its first trade "
        "from the venue's candles (0 to 86400; default 0: none)",
    )  # fmt: skip
    parser.add_argument(
        "--repair-timeout-ms", type=int, default=10_000,
        help="deadline of each GetCandles call made to repair a gap (default 10000)",
    )  # fmt: skip
    parser.add_argument(
        "--linger-ms", type=whole_number(0), default=50,
        help="after a bus read short of a batch, wait this long before the next: fewer, larger "
        "commits (default 50; 0 reads at once)",
    )  # fmt: skip
    parser.add_argument("--group", default="bars", help="consumer group on the trade streams (default bars)")
    parser.add_argument(
        "--consumer",
        default="bars",
        help="consumer name: each stream is read as <consumer>:<stream> by whichever replica holds "
        "it; the same for every replica of a group (default bars)",
    )
    parser.add_argument(
        "--lease-ttl-ms",
        type=positive_int,
        default=5000,
        help="a stream's lease: replicas of a group divide the trade streams; another replica takes "
        "a stream over within this after its holder died (default 5000)",
    )
    parser.add_argument(
        "--streams",
        default=market_pattern(Channel.TRADES),
        help="trade streams to read, a Redis pattern (default md.{*}.trades)",
    )
    parser.add_argument("--source", help="name written into every bus entry (default: bars/<hostname>)")


def _rules(args: argparse.Namespace) -> WatermarkRules:
    from core.bars.watermark import WatermarkRules

    for name in ("lateness_ms", "idle_close_ms", "max_future_ms"):
        if getattr(args, name) < 0:
            raise InvalidArgument.field(name.replace("_", "-"), "must not be negative")
    if args.repair_timeout_ms <= 0:
        raise InvalidArgument.field("repair-timeout-ms", "must be positive")
    if not 0 <= args.backfill_s <= _MAX_BACKFILL_S:
        raise InvalidArgument.field(
            "backfill-s", f"{args.backfill_s} is out of range: 0 to {_MAX_BACKFILL_S}"
        )
    ms = 1_000_000
    return WatermarkRules(
        args.lateness_ms * ms, args.idle_close_ms * ms, args.max_future_ms * ms, args.backfill_s * 1000 * ms
    )


def _config(args: argparse.Namespace) -> BarsConfig:
    from core.bars.app import BarsConfig
    from core.foundations.env import GATEWAY, read_secret, redis_url
    from core.foundations.mesh_config import mesh_config_from_args

    source = {} if args.source is None else {"source": args.source}
    return BarsConfig(
        redis_url(args.redis_url),
        mesh_config_from_args(args),
        _rules(args),
        group=args.group,
        consumer=args.consumer,
        lease_ttl_ms=args.lease_ttl_ms,
        pattern=args.streams,
        repair_timeout_s=args.repair_timeout_ms / 1000,
        linger_ms=args.linger_ms,
        gateway=read_secret(GATEWAY),
        **source,
    )


def _create(config: BarsConfig) -> ServiceApp:
    from core.bars.app import Bars

    return Bars(config)


def _mesh_args(mesh: MeshView) -> list[str]:
    # The venues: for repairs and the backfill, from their historical candles.
    return [*venue_args(mesh.venues), "--backfill-s", str(MESH_BACKFILL_S)]


COMMAND: ServiceCommand[BarsConfig] = ServiceCommand(
    config=_config, create=_create, add_arguments=_add_arguments, mesh_args=_mesh_args
)
