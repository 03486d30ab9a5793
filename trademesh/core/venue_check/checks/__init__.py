"""The checks, registered in the order they run (trademesh.core.venue_check.registry): the order of MODULES.

Reads first; then the orders, executions and account; auth and limits; the dead-man switch; and
Drain last, since a drained venue takes nothing more.
"""

import importlib

MODULES = (
    "service",
    "market_data",
    "candles",
    "history",
    "resume",
    "orders",
    "executions",
    "account",
    "auth",
    "deadman",
    "drain",
)

for _module in MODULES:
    importlib.import_module(f"{__name__}.{_module}")
