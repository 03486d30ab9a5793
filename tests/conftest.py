"""Configuration of the whole suite: the process guard, and how tests share pytest-xdist workers.

Under `pytest -n 2 --dist loadgroup` (what `./dev test` runs), tests go to the two workers one
by one, except those in an xdist_group, which run together in one worker. Two kinds are
grouped here, so that what they share is set up once, as in a serial run:

- the tests of a module that use a module-scoped fixture (a gateway, a bridge, Studio's mesh
  and browser): grouped by module;
- the tests that read a shared replay venue (`replay_sessions`): one group, whose worker
  owns the shared venues (one per capture).
"""

from __future__ import annotations

import pytest

pytest_plugins = ["tests.process_guard"]

# The fixture that holds the shared replay venues (tests/integration/replay.py).
_SHARED_REPLAYS = "replay_sessions"


def _group(item: pytest.Item) -> str | None:
    info = getattr(item, "_fixtureinfo", None)
    if info is None:
        return None
    if _SHARED_REPLAYS in info.names_closure:
        return "replay-shared"
    for name in info.names_closure:
        definitions = info.name2fixturedefs.get(name, ())
        if any(d.scope == "module" for d in definitions):
            return item.nodeid.split("::")[0]
    return None


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        group = _group(item)
        if group is not None:
            item.add_marker(pytest.mark.xdist_group(group))
