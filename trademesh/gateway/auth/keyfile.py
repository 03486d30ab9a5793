"""A key kept in a file for local tools (`trademesh up` writes the one Studio and agents use).

The file holds the key alone, mode 600. If it is missing, unreadable or holds anything but the
live key of that name, the name gets a new key (its old one, unrecoverable anyway, is
revoked) and the file is rewritten atomically.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from trademesh.core.platform.access.contracts import Scope
from trademesh.gateway.auth.keys import check_name, looks_like_key
from trademesh.gateway.auth.store import KeyStore

__all__ = ["ensure_key_file", "read_key_file"]

log = logging.getLogger(__name__)


def read_key_file(path: Path) -> str | None:
    """The key in `path`, or None when there is no readable key there."""
    try:
        text = path.read_text().strip()
    except (OSError, UnicodeDecodeError):
        return None
    return text if looks_like_key(text) else None


def _tighten(path: Path) -> None:
    if path.stat().st_mode & 0o077:
        path.chmod(0o600)


def _write_private(path: Path, key: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # mkstemp creates the file with mode 600; os.replace swaps it in whole.
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "w") as file:
            file.write(key + "\n")
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


async def ensure_key_file(database_url: str, name: str, path: Path, scopes: Iterable[Scope]) -> bool:
    """True when it made key `name` and wrote it to `path`; False when `path` holds it already.
    Either way the key has exactly `scopes` afterwards."""
    check_name(name)
    wanted = frozenset(scopes)
    store = await KeyStore.open(database_url)
    try:
        key = read_key_file(path)
        held = None if key is None else await store.live_scopes(name, key)
        if held is not None:
            _tighten(path)
            if held != wanted:
                await store.set_scopes(name, wanted)
            return False
        await store.replace(name, wanted, lambda made: _write_private(path, made))
    finally:
        await store.close()
    log.info("gateway auth: made API key %s, kept in %s", name, path)
    return True
