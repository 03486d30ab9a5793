"""Logging set-up shared by every trademesh process: one line per record, to stderr."""

from __future__ import annotations

import logging
import os

from core.env import LOG_LEVEL

__all__ = ["setup_logging"]


def setup_logging(service: str) -> None:
    level = os.environ.get(LOG_LEVEL, "INFO").upper()
    logging.basicConfig(
        level=level,
        format=f"%(asctime)s %(levelname)s {service} %(name)s: %(message)s",
    )
    # grpc and asyncio are chatty at INFO about things operators do not act on.
    logging.getLogger("asyncio").setLevel(logging.WARNING)
