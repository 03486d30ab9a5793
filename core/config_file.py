"""Files an operator names (a config, a policy set): read as UTF-8 TOML, or one InvalidArgument.

Every reader of such a file caught OSError and TOML's errors and no other: a file that is not
UTF-8 (a UnicodeDecodeError) ended the command with a traceback. Here a file that cannot be
opened, is not UTF-8 text, or is not TOML is InvalidArgument naming the setting (`config`,
`policies`, ...) and saying which of the three, and where.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from core.errors import InvalidArgument

__all__ = ["read_text", "read_toml"]


def read_text(path: Path, field: str) -> str:
    """The file's text (UTF-8); InvalidArgument naming `field` when it cannot be read."""
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        byte = exc.object[exc.start : exc.start + 1].hex()
        raise InvalidArgument.field(
            field, f"cannot read {path}: not UTF-8 text (byte 0x{byte} at offset {exc.start})"
        ) from None
    except OSError as exc:
        raise InvalidArgument.field(field, f"cannot read {path}: {exc.strerror or exc}") from None


def read_toml(path: Path, field: str) -> dict[str, Any]:
    """The file's TOML table; InvalidArgument naming `field` when it cannot be read or parsed."""
    text = read_text(path, field)
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InvalidArgument.field(field, f"cannot read {path}: not valid TOML: {exc}") from None
