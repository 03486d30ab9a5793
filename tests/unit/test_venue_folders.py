"""Venue folders keep their shape: one file name per role, the stand-in apart from the connector.

docs/venues.md ("A venue folder") lists the roles. The import checks run each venue in a fork of
a fresh interpreter that has imported only what all venues share (checked to load no stand-in),
so what one test or venue imported cannot hide what another venue loads.
"""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from trademesh.venues.registry import VENUES

ROOT = Path(__file__).resolve().parents[2]
VENUES_DIR = ROOT / "trademesh" / "venues"
# Not venue folders: the shared runtime, the live connector, the replay harness, the paper mode
# (any venue's market data, orders matched locally: docs/paper.md); and the sim, a built-in
# exchange rather than a connector (its modules are listed in the README); the manifests' template
# (trademesh/venues/manifests: a venue's compose service and Kubernetes file); and node-ref, a venue in
# TypeScript that speaks the contract from its own process (trademesh/venues/node_ref/README.md).
SHARED = {"runtime", "live", "replay", "paper", "manifests"}
NOT_CONNECTORS = SHARED | {"sim", "node_ref"}
TEMPLATE = "_template"

# role file -> required in every live venue folder
CONNECTOR_FILES = {
    "__init__.py": True,
    "spec.py": True,
    "exchange.py": False,
    "sequence.py": False,
    "wire.py": False,
    "margin.py": False,  # a derivatives exchange's leverage, margin modes and liquidations (MarginRules)
}
STANDIN_FILES = {
    "__init__.py": True,
    "adapter.py": True,
    "order_store.py": False,
    "history.py": False,
    "trades.py": False,  # public trade history and all-tickers
    "listing.py": False,  # the exchange's market list as a test changes it (delistings, rules)
    "synthesized.py": False,
    "funding.py": False,
    "derivatives.py": False,  # the public derivatives data the capture lacks (open interest)
    "margin.py": False,  # a derivatives account's leverage, margin, positions and liquidations
}

# Run in a fresh interpreter that imports what every venue shares (the venues' third-party
# libraries, the live runtime every connector builds on, the registry), checks that no stand-in
# is loaded by then, then forks a child per venue (a fork copies that interpreter: no module one
# venue imported is loaded for the next). The child imports the venue package, creates the venue
# without a replay (directly, then through the registry when it is registered), lists what of the
# stand-ins is loaded; then imports the stand-in module the spec names, as a replay would. One
# JSON line per venue: its findings, or the child's traceback.
_PROBE = """
import importlib, json, os, sys, traceback

def standin_modules():
    return sorted(
        name for name in sys.modules
        if name == "trademesh.venues.replay" or name.startswith("trademesh.venues.replay.") or ".standin" in
         name
    )

SHARED = (
    "ccxt", "ccxt.async_support", "ccxt.pro", "aiohttp", "trademesh.venues.live.venue",
    "trademesh.venues.live.config", "trademesh.venues.live.accounts", "trademesh.venues.registry",
)
for module in SHARED:
    importlib.import_module(module)
    assert standin_modules() == [], f"importing {module} loads stand-ins: {standin_modules()}"
assert not [name for name in sys.modules if name.startswith("trademesh.venues.") and
            name.split(".")[2] not in ("live", "runtime", "registry", "plugins")], "a venue is loaded"

def probe(package, registered):
    venue = importlib.import_module(package)
    venue.create_venue(None, None)
    if registered:
        from trademesh.venues.registry import create_venue
        create_venue(registered, None)
    before = standin_modules()
    standin = importlib.import_module(venue.SPEC.standin)
    return {"before": before, "after": standin_modules(), "adapter": callable(standin.create_adapter)}

for package, registered in json.loads(sys.argv[1]):
    sys.stdout.flush()
    read, write = os.pipe()
    child = os.fork()
    if child == 0:
        os.close(read)
        try:
            found = {"package": package, **probe(package, registered)}
        except BaseException:
            found = {"package": package, "error": traceback.format_exc()}
        with os.fdopen(write, "w") as out:
            out.write(json.dumps(found))
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as got:
        line = got.read()
    _, status = os.waitpid(child, 0)
    print(line if line else json.dumps({"package": package, "error": f"the child ended ({status}) unheard"}))
"""


def _connector_folders() -> list[str]:
    return sorted(
        path.name
        for path in VENUES_DIR.iterdir()
        if path.is_dir() and path.name not in NOT_CONNECTORS and path.name != "__pycache__"
    )


def _python_files(folder: Path) -> set[str]:
    return {path.name for path in folder.iterdir() if path.is_file() and path.suffix == ".py"}


def _subfolders(folder: Path) -> set[str]:
    return {path.name for path in folder.iterdir() if path.is_dir() and path.name != "__pycache__"}


def _registered_name(package: str) -> str:
    return next((entry.name for entry in VENUES.values() if entry.module == package), "")


@pytest.fixture(scope="module")
def probed() -> dict[str, dict[str, Any]]:
    """Every venue folder's findings, from one probe (a fork per venue)."""
    packages = [f"trademesh.venues.{folder}" for folder in _connector_folders()]
    probe = subprocess.run(
        [sys.executable, "-c", _PROBE, json.dumps([[p, _registered_name(p)] for p in packages])],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        check=False,
    )
    assert probe.returncode == 0, probe.stderr
    found = [json.loads(line) for line in probe.stdout.splitlines() if line.startswith('{"package"')]
    return {line.pop("package"): line for line in found}


@pytest.mark.parametrize("folder", _connector_folders())
def test_a_venue_imported_and_created_without_replay_loads_no_standin(
    folder: str, probed: dict[str, dict[str, Any]]
) -> None:
    package = f"trademesh.venues.{folder}"
    loaded = probed[package]
    assert "error" not in loaded, loaded["error"]
    assert loaded["before"] == []
    # The probe does see stand-in modules once a replay would load them.
    assert f"{package}.standin" in loaded["after"] and "trademesh.venues.replay.adapter" in loaded["after"]
    assert loaded["adapter"] is True


@pytest.mark.parametrize("folder", _connector_folders())
def test_a_venue_folder_has_one_file_name_per_role(folder: str) -> None:
    path = VENUES_DIR / folder
    files, standin = _python_files(path), _python_files(path / "standin")
    assert {name for name, required in CONNECTOR_FILES.items() if required} <= files
    assert files - set(CONNECTOR_FILES) == set(), f"{folder}: files outside the roles"
    assert _subfolders(path) == {"standin"}
    assert {name for name, required in STANDIN_FILES.items() if required} <= standin
    assert standin <= set(STANDIN_FILES), (
        f"{folder}/standin: files outside the roles: {standin - set(STANDIN_FILES)}"
    )
    assert _subfolders(path / "standin") == set()


def test_every_venue_folder_is_registered_but_the_template() -> None:
    registered = {entry.module for entry in VENUES.values()}
    assert {f"trademesh.venues.{folder}" for folder in _connector_folders()} - registered == {
        f"trademesh.venues.{TEMPLATE}"
    }
    assert {module for module in registered if module != "trademesh.venues.sim"} <= {
        f"trademesh.venues.{folder}" for folder in _connector_folders()
    }


def _venue_words() -> re.Pattern[str]:
    names = {name for name in VENUES if name != "sim"} | {
        folder for folder in _connector_folders() if folder != TEMPLATE
    }
    return re.compile(r"\b(" + "|".join(sorted(map(re.escape, names))) + r")\b", re.IGNORECASE)


def _code_strings(tree: ast.Module) -> list[str]:
    """String constants that are not docstrings (examples in docstrings are fine)."""
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings
    ]


def _imported(tree: ast.Module) -> list[str]:
    modules = [node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules += [alias.name for alias in node.names]
    return modules


@pytest.mark.parametrize("shared", sorted(SHARED))
def test_the_shared_venue_code_has_no_venue_branches(shared: str) -> None:
    words, checked = _venue_words(), 0
    for path in sorted((VENUES_DIR / shared).rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        named = [text for text in _code_strings(tree) if words.search(text)]
        assert named == [], f"{path.relative_to(ROOT)} names a venue in code: {named}"
        venue_imports = [
            module
            for module in _imported(tree)
            if module.startswith("trademesh.venues.") and module.split(".")[2] not in SHARED | {"registry"}
        ]
        assert venue_imports == [], f"{path.relative_to(ROOT)} imports a venue: {venue_imports}"
        checked += 1
    assert checked > 0
