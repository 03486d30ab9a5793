"""Plugins of the whole suite: the process guard (no test process outlives the run) and how the
tests share pytest-xdist's workers (groups, exclusive tests)."""

from __future__ import annotations

pytest_plugins = ["tests.process_guard", "tests.workers"]
