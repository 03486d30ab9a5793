"""`trademesh bars`: its flags, its config, its app (trademesh.core.platform.service.command)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from trademesh.core.bars.config import BarsConfig
from trademesh.core.bars.watermark import WatermarkRules
from trademesh.core.platform.config.flags import add_flags, flag_values
from trademesh.core.platform.config.mesh import add_mesh_arguments, venue_args
from trademesh.core.platform.errors import InvalidArgument
from trademesh.core.platform.service.command import MeshView, ServiceCommand, add_redis_argument

if TYPE_CHECKING:
    from trademesh.core.platform.service.lifecycle import ServiceApp

__all__ = ["COMMAND", "MESH_BACKFILL_S"]

_MAX_BACKFILL_S = 86_400
# `trademesh up`'s: the hour of candles a sim with `history_s` holds before it opens (the demo
# market's 20 minutes, trademesh/venues/sim/demo.toml), so the advisor's context has its 1m bars at once.
MESH_BACKFILL_S = 3600


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    add_redis_argument(parser)
    add_mesh_arguments(parser)
    add_flags(parser, WatermarkRules)
    add_flags(parser, BarsConfig)


def _rules(args: argparse.Namespace) -> WatermarkRules:
    for name in ("lateness_ms", "idle_close_ms", "max_future_ms"):
        if getattr(args, name) < 0:
            raise InvalidArgument.field(name.replace("_", "-"), "must not be negative")
    if args.repair_timeout_ms <= 0:
        raise InvalidArgument.field("repair-timeout-ms", "must be positive")
    if not 0 <= args.backfill_s <= _MAX_BACKFILL_S:
        raise InvalidArgument.field(
            "backfill-s", f"{args.backfill_s} is out of range: 0 to {_MAX_BACKFILL_S}"
        )
    return WatermarkRules(**flag_values(args, WatermarkRules))


def _config(args: argparse.Namespace) -> BarsConfig:
    from trademesh.core.platform.config.env import GATEWAY, read_secret, redis_url
    from trademesh.core.platform.config.mesh import mesh_config_from_args

    return BarsConfig(
        redis_url(args.redis_url),
        mesh_config_from_args(args),
        _rules(args),
        gateway=read_secret(GATEWAY),
        **flag_values(args, BarsConfig),
    )


def _create(config: BarsConfig) -> ServiceApp:
    from trademesh.core.bars.app import Bars

    return Bars(config)


def _mesh_args(mesh: MeshView) -> list[str]:
    # The venues: for repairs and the backfill, from their historical candles.
    return [*venue_args(mesh.venues), "--backfill-s", str(MESH_BACKFILL_S)]


COMMAND: ServiceCommand[BarsConfig] = ServiceCommand(
    config=_config,
    create=_create,
    add_arguments=_add_arguments,
    mesh_args=_mesh_args,
    settings=(BarsConfig, WatermarkRules),
)
