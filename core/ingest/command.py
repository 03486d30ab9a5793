"""`trademesh ingest`: its own flags (the common ones are core.cli's)."""

from __future__ import annotations

import argparse
import functools

import uvloop

from core.env import redis_url
from core.ingest.app import IngestOptions, run_ingest
from core.mesh.config import mesh_config_from_args
from core.service import run_service

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--source", help="name written into every bus entry (default: ingest/<hostname>)")
    parser.add_argument(
        "--max-queued",
        type=int,
        default=20_000,
        help="bus entries held while Redis is slow or away before venues are paused (default 20000)",
    )


def run(args: argparse.Namespace) -> None:
    options = IngestOptions(
        mesh_config_from_args(args), redis_url(args.redis_url), args.source, args.max_queued
    )
    work = functools.partial(run_ingest, options)
    uvloop.run(run_service("ingest", args.server_options, work))
