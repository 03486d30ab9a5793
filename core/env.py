"""Every environment variable trademesh reads, in one place.

Secrets come only from the environment; they are never logged, put in an error
or returned by an API.
"""

from __future__ import annotations

import os

__all__ = ["LOG_LEVEL", "TOKEN", "read_secret"]

# Log level of every process (DEBUG, INFO, WARNING, ...); INFO when unset.
LOG_LEVEL = "TRADEMESH_LOG_LEVEL"

# Bearer token that services require on every RPC but health and reflection.
# Unset or empty: auth is off (the service logs a loud warning at start).
TOKEN = "TRADEMESH_TOKEN"


def read_secret(name: str) -> str | None:
    value = os.environ.get(name, "")
    return value if value != "" else None
