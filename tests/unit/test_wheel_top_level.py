"""trademesh's wheel puts exactly one import package at the top of site-packages, `trademesh`, and
no other installed distribution ships it (docs/install.md, "The import packages' names"): a new
top-level package, or a dependency that brings its own `trademesh`, fails here before it
overwrites or shadows ours in someone's environment."""

from __future__ import annotations

import importlib.metadata
import tomllib
from pathlib import Path

from setuptools import PackageFinder  # type: ignore[import-untyped]

ROOT = Path(__file__).resolve().parents[2]
# The hand-written trademesh.core, .gateway and .venues and the generated trademesh.<area>.v1, under
# one name (docs/install.md). Change this only with that section of the doc.
TOP_LEVEL = {"trademesh"}


def _packages() -> set[str]:
    """The packages pyproject.toml's find settings give the wheel (what setuptools builds from)."""
    find = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]
    assert find["namespaces"] is False, "namespace packages would take any directory, node_modules' too"
    found: set[str] = set()
    for where in find["where"]:
        found |= set(PackageFinder.find(str(ROOT / where), include=find["include"]))
    return found


def test_the_wheel_has_exactly_the_known_top_level_packages() -> None:
    top_level = {name.partition(".")[0] for name in _packages()}
    assert top_level == TOP_LEVEL, (
        f"the wheel's top-level packages {sorted(top_level)} are not {sorted(TOP_LEVEL)}: a new one "
        "lands at the top of site-packages (docs/install.md, 'The import packages' names')"
    )


def test_every_package_directory_of_the_tree_is_in_the_wheel() -> None:
    """A package under trademesh/ the include patterns miss would import in a checkout and be
    missing from an installation."""
    packages = _packages()
    missing = sorted(
        ".".join(init.parent.relative_to(ROOT).parts)
        for init in (ROOT / "trademesh").rglob("__init__.py")
        if "node_modules" not in init.parts and ".".join(init.parent.relative_to(ROOT).parts) not in packages
    )
    assert not missing, f"packages the wheel leaves out: {missing[:20]}"


def test_no_other_installed_distribution_ships_our_top_level_packages() -> None:
    owners = importlib.metadata.packages_distributions()
    others = {name: sorted(set(owners.get(name, [])) - {"trademesh"}) for name in TOP_LEVEL}
    clashes = {name: dists for name, dists in others.items() if dists}
    assert not clashes, f"installed distributions that also ship these import packages: {clashes}"
