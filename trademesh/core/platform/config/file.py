"""Files an operator names (a config, a policy set, a strategy): read as UTF-8 TOML, or one
InvalidArgument; every config, policy and strategy file of the project is read here.

Every reader of such a file caught OSError and TOML's errors and no other: a file that is not
UTF-8 (a UnicodeDecodeError) ended the command with a traceback. Here a file that cannot be
opened, is not UTF-8 text, or is not TOML is InvalidArgument naming the setting (`config`,
`policies`, ...) and saying which of the three, and where; so is one nested deeper than
trademesh.core.platform.parsing's bound.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from trademesh.core.platform.errors import InvalidArgument
from trademesh.core.platform.parsing import loads_toml

__all__ = ["parse_toml", "read_text", "read_toml"]


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
    return parse_toml(read_text(path, field), field, f"cannot read {path}")


def parse_toml(text: str, field: str, source: str) -> dict[str, Any]:
    """The TOML table in `text` (from `source`, for the error); InvalidArgument naming `field`
    when it is not TOML or nests too deep. Engine cores, which read no files, parse their text here too."""
    return loads_toml(text, field, source)
