"""bench/soak.py follows a service across a restart by `up`'s supervisor: its newest pid."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]


def _soak() -> ModuleType:
    sys.path.insert(0, str(ROOT / "bench"))  # soak.py imports its sibling _common
    spec = importlib.util.spec_from_file_location("soak", ROOT / "bench" / "soak.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("soak", module)
    spec.loader.exec_module(module)
    return module


def test_a_service_restarted_by_up_is_measured_at_its_new_pid() -> None:
    log = "\n".join([
        "mesh     | supervisor serving on 127.0.0.1:45877 (pid 26033)",
        "mesh     | inspector standing by on 127.0.0.1:5101 (pid 7)",
        "supervisor | 2026-11-28 21:42:11,223 INFO supervisor "
        "trademesh.core.platform.service.lifecycle: serving",
        "supervisor | [supervisor] restarted (restart 1), serving on 127.0.0.1:45877 (pid 31895)",
    ])  # fmt: skip
    assert _soak().services(log) == {"supervisor": 31895, "inspector": 7}
