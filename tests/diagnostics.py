"""A pytest plugin: tests marked `diagnostic` are left out of a run unless it asks for them.

A diagnostic compares what is not yet equal every time (it says why in its docstring and in the
docs), so it cannot gate the suite; it is run by name while the work on it goes on:

    TRADEMESH_DIAGNOSTICS=1 .venv/bin/python -m pytest -s -n 0 tests/integration/test_chain_parity.py

Left out, it is reported as deselected, never as passed.
"""

from __future__ import annotations

import os

import pytest

__all__: list[str] = []

_ENV = "TRADEMESH_DIAGNOSTICS"
_MARK = "diagnostic"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", f"{_MARK}: not in the suite; run with {_ENV}=1 (tests/diagnostics.py)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get(_ENV) == "1":
        return
    left = [item for item in items if item.get_closest_marker(_MARK) is not None]
    if left:
        config.hook.pytest_deselected(items=left)
        items[:] = [item for item in items if item.get_closest_marker(_MARK) is None]
