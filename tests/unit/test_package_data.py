"""An installed trademesh (the container image's `pip install .`) carries every data file the
code reads: each migration, shipped strategy, policy set and model under trademesh/core/ is matched by
pyproject.toml's package-data, or the service stops at start looking for it."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DATA = ("*.sql", "*.toml", "*.json", "*.md")


def test_every_data_file_under_core_is_package_data() -> None:
    globs = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"][
        "trademesh.core"
    ]
    core = ROOT / "trademesh" / "core"
    wanted = {p for pattern in DATA for p in core.rglob(pattern) if "__pycache__" not in p.parts}
    covered = {p for pattern in globs for p in core.glob(pattern)}
    missing = sorted(str(p.relative_to(ROOT)) for p in wanted - covered)
    assert not missing, f"not in pyproject.toml's package-data: {missing}"
