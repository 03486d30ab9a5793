"""A venue's replay stand-in, loaded by the module its LiveSpec names (`standin`).

Venue connectors never import their stand-in: `import venues.<name>` and a venue made
without `--replay` load no fake-exchange code. Only a replay comes here, and only then is
the venue's `standin` package (and this aiohttp server) imported.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from pathlib import Path

from trademesh.core.platform.errors import InvalidArgument
from trademesh.venues.replay.adapter import ReplayAdapter
from trademesh.venues.replay.capture import load_capture
from trademesh.venues.replay.server import ReplayOptions, ReplayServer

__all__ = ["load_adapter", "open_standin"]


def load_adapter(standin: str, files: Sequence[Path]) -> ReplayAdapter:
    """The stand-in module's `create_adapter`, given the capture in `files`; a capture it cannot
    serve (of an API it does not speak, or with no market data it knows) is refused, saying why."""
    module = importlib.import_module(standin)
    adapter: ReplayAdapter = module.create_adapter(load_capture(files))
    reason = adapter.unserved()
    if reason is not None:
        raise InvalidArgument.field("replay", reason)
    return adapter


def open_standin(standin: str, options: ReplayOptions) -> ReplayServer:
    """The stand-in server for a replay (not started yet: ReplayServer.start)."""
    return ReplayServer(load_adapter(standin, options.files), options)
