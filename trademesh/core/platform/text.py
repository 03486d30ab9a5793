"""Text PostgreSQL cannot store: what is refused at every edge, and replaced where it cannot be.

A text (or jsonb) column takes any Unicode string but two kinds of character: NUL (U+0000:
"invalid byte sequence for encoding UTF8: 0x00", and jsonb refuses the escape \\u0000 too),
and a lone surrogate (U+D800..U+DFFF, which has no UTF-8 form: asyncpg cannot even encode it;
Python makes them from bytes that are not UTF-8, e.g. a command-line argument). A request
naming such text is refused where it comes in (trademesh.core.platform.rpc's edge: every string field of every
request; a document's parsed values: `unstorable_values`); what must be recorded whatever it
holds (the recorder's audit of the bus) stores it with each such character as U+FFFD
(`storable`), its raw protobuf body kept beside it where the table has one.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

__all__ = ["REPLACEMENT", "storable", "unstorable", "unstorable_values"]

REPLACEMENT = "\ufffd"
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def unstorable(text: str) -> str | None:
    """Why PostgreSQL cannot store `text` (a field violation's description), or None."""
    found = _UNSTORABLE.search(text)
    if found is None:
        return None
    where = found.start()
    if found[0] == "\x00":
        return f"holds a NUL character (U+0000) at index {where}: text cannot hold one"
    return f"holds a lone surrogate (U+{ord(found[0]):04X}) at index {where}: not Unicode text"


def storable(text: str) -> str:
    """`text` with every character PostgreSQL cannot store replaced by U+FFFD."""
    return text if _UNSTORABLE.search(text) is None else _UNSTORABLE.sub(REPLACEMENT, text)


def unstorable_values(value: Any, path: str) -> list[tuple[str, str]]:
    """(path, why) for every string in a parsed document (TOML, JSON: tables, arrays, keys,
    strings) that PostgreSQL cannot store; `path` is where `value` is ("" for the top)."""
    found: list[tuple[str, str]] = []
    if isinstance(value, str):
        why = unstorable(value)
        if why is not None:
            found.append((path, why))
    elif isinstance(value, Mapping):
        for key, item in value.items():
            key_why = unstorable(key) if isinstance(key, str) else None
            where = f"{path}.{key}" if path else str(key)
            if key_why is not None:
                found.append((f"{where} key", key_why))
            else:
                found += unstorable_values(item, where)
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            found += unstorable_values(item, f"{path}[{index}]")
    return found
