"""`trademesh data <tool>`: history from the past into the recorder's tables, and what they hold.

Each tool is a module with `add_parser(tools)` adding its subcommand; DATA_TOOLS lists them, so
a new tool (`data download`) is one line here. They are imported when the parser is built;
what they run imports the database client and the rest only when run.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["DATA_TOOLS", "add_data_parser"]

DATA_TOOLS = (
    "trademesh.core.history.import_command",  # trademesh data import FILE|DIR ...
    "trademesh.core.history.coverage_command",  # trademesh data coverage [VENUE] [SYMBOL]
    "trademesh.core.history.download_command",  # trademesh data download VENUE SYMBOL... --since ...
)


def add_data_parser(commands: Any) -> None:
    data = commands.add_parser(
        "data",
        help="history from the past (exchange archives, CSV) into the recorder's tables, and its coverage",
        description=__doc__,
    )
    tools = data.add_subparsers(dest="data_command", required=True, metavar="TOOL")
    for module in DATA_TOOLS:
        importlib.import_module(module).add_parser(tools)
