"""Every public class name is defined once across trademesh/core/, trademesh/gateway/ and trademesh/venues/
(issue 61).

docs/architecture.md promises that a name says one thing: a reader who meets `Plan` or `Verdict`
should not have to ask which module's. The test walks the three trees (generated code, node
modules and caches aside), collects each module's top-level classes without a leading
underscore, and fails on a name defined in more than one module, naming the modules.

PENDING holds the names still repeated when the test landed, each awaiting its rename. It is a
ratchet: a name in PENDING that is no longer repeated fails the test too, so the list only
shrinks. PENDING must end empty (issue 61).
"""

from __future__ import annotations

import ast
import functools
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TREES = ("trademesh/core", "trademesh/gateway", "trademesh/venues")
SKIPPED_PARTS = frozenset({"node_modules", "__pycache__"})

# Repeated names not yet renamed (issue 61): none left; a repeat fails the test.
PENDING: frozenset[str] = frozenset()


def _modules() -> list[Path]:
    """The Python modules under the three trees, generated code and caches aside."""
    found: list[Path] = []
    for tree in TREES:
        for path in sorted((ROOT / tree).rglob("*.py")):
            if SKIPPED_PARTS.isdisjoint(path.relative_to(ROOT).parts):
                found.append(path)
    return found


def _public_classes(path: Path) -> list[str]:
    """The module's top-level class names without a leading underscore."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    return [
        node.name for node in tree.body if isinstance(node, ast.ClassDef) and not node.name.startswith("_")
    ]


@functools.cache
def _walked() -> dict[str, tuple[str, ...]]:
    """The walk, done once for the module's tests (it parses every module of the three trees)."""
    where: dict[str, list[str]] = defaultdict(list)
    for path in _modules():
        for name in _public_classes(path):
            where[name].append(path.relative_to(ROOT).as_posix())
    return {name: tuple(modules) for name, modules in where.items()}


def _definitions() -> dict[str, list[str]]:
    """Each public class name -> the modules (paths from the root) that define it."""
    return {name: list(modules) for name, modules in _walked().items()}


def test_the_walk_finds_the_trees_classes() -> None:
    where = _definitions()
    assert len(where) > 500, "the walk found too few classes: are the trees where it looks?"
    assert "trademesh/core/domain/model.py" in where["Order"]


def test_no_public_class_name_is_defined_twice() -> None:
    repeats = {name: mods for name, mods in _definitions().items() if len(mods) > 1}
    new = {name: mods for name, mods in repeats.items() if name not in PENDING}
    assert not new, "public class names defined in more than one module (rename each for what it is):\n" + (
        "\n".join(f"  {name}: {', '.join(mods)}" for name, mods in sorted(new.items()))
    )


def test_pending_only_shrinks() -> None:
    where = _definitions()
    settled = sorted(name for name in PENDING if len(where.get(name, [])) < 2)
    assert not settled, f"no longer repeated, take them out of PENDING: {', '.join(settled)}"
