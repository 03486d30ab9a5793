"""pytest's cache of the test modules' rewritten asserts, written without importing them
(`./dev test` runs it before pytest: `python -m tests.assert_cache`).

pytest rewrites the asserts of each test module (test_*.py, conftest.py, the modules named in a
conftest's `pytest_plugins`, and every module of an installed pytest plugin's distribution:
hypothesis, anyio, xdist...) as it imports it, and keeps the result in the module's __pycache__
(`<name>.cpython-311-pytest-<version>.pyc`, a hash-checked pyc). Every xdist worker imports every
test module to collect it, so without that cache each rewrites all of them, at once, on the same
cores. A collection run first wrote it, but that also imported everything the test modules import
(the rewrite was 25 CPU s of a 60 s collection on two cores); this writes the same files with
pytest's own rewrite (`rewrite_asserts`, as its `_rewrite_test` calls it) and nothing else, a
share of the modules per core.

It writes what pytest would with no `enable_assertion_pass_hook` (pyproject.toml sets none), and
leaves a module whose cache is valid (its source's hash matches) as it is.
"""

from __future__ import annotations

import ast
import importlib.metadata
import importlib.util
import multiprocessing
import os
import sys
from collections.abc import Iterable
from pathlib import Path
from types import CodeType

from _pytest.assertion.rewrite import PYC_TAIL, _read_pyc, _write_pyc_fp, get_cache_dir, rewrite_asserts
from _pytest.config import _iter_rewritable_modules

__all__ = ["modules", "plugin_modules", "write_cache"]

_TESTS = Path(__file__).resolve().parent


def modules(root: Path = _TESTS) -> list[Path]:
    """The modules pytest rewrites under `root`: the test modules, the conftests and the plugin
    modules the conftests name (pytest_plugins), largest first (the longest work first)."""
    found = {path for path in root.rglob("*.py") if _is_test_module(path.name)}
    for conftest in root.rglob("conftest.py"):
        found.update(_plugin_files(conftest, root))
    return sorted(found, key=lambda path: (-path.stat().st_size, str(path)))


def plugin_modules() -> list[Path]:
    """The files of the installed distributions that hold a pytest plugin (an entry point in
    `pytest11`): pytest rewrites every module of theirs it imports (a whole hypothesis). Each
    is written once per environment (then its cache is valid); the rewrite of a module with few
    asserts costs about its compile."""
    found: list[Path] = []
    for dist in importlib.metadata.distributions():
        if not any(ep.group == "pytest11" for ep in dist.entry_points):
            continue
        files = list(dist.files or ())
        names = set(_iter_rewritable_modules(str(file) for file in files))
        found.extend(
            Path(str(dist.locate_file(file)))
            for file in files
            if file.suffix == ".py" and (file.parts[0].removesuffix(".py") in names)
        )
    return [path for path in found if path.is_file()]


def _is_test_module(name: str) -> bool:
    return name == "conftest.py" or (name.startswith("test_") or name.endswith("_test.py"))


def _plugin_files(conftest: Path, root: Path) -> Iterable[Path]:
    """The files of the modules a conftest names in `pytest_plugins` that are under root's parent."""
    for node in ast.parse(conftest.read_bytes()).body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "pytest_plugins" for t in node.targets
        ):
            names = ast.literal_eval(node.value)
            for name in [names] if isinstance(names, str) else names:
                path = root.parent.joinpath(*name.split(".")).with_suffix(".py")
                if path.is_file():
                    yield path


def write_cache(path: Path) -> bool:
    """Write `path`'s rewritten pyc where pytest reads it; False when a valid one was there (or
    the module does not compile: pytest's collection reports that)."""
    source = path.absolute()
    cache_dir = get_cache_dir(source)
    pyc = cache_dir / (source.name[:-3] + PYC_TAIL)
    if _read_pyc(source, pyc) is not None:
        return False
    try:
        source_hash, code = _rewrite(source)
    except (SyntaxError, ValueError):  # pytest says so when it imports the module
        return False
    cache_dir.mkdir(exist_ok=True)
    written = pyc.with_name(f"{pyc.name}.{os.getpid()}")
    with open(written, "wb") as file:
        _write_pyc_fp(file, source_hash, code)
    written.replace(pyc)  # whole or not at all, as pytest's own write (a worker may read it now)
    return True


def _rewrite(path: Path) -> tuple[bytes, CodeType]:
    """As pytest's _rewrite_test, with no config (no assertion pass hook)."""
    source = path.read_bytes()
    tree = ast.parse(source, filename=str(path))
    rewrite_asserts(tree, source, str(path), None)
    return importlib.util.source_hash(source), compile(tree, str(path), "exec", dont_inherit=True)


def main() -> int:
    paths = modules() + plugin_modules()
    with multiprocessing.get_context("fork").Pool(os.cpu_count() or 1) as pool:
        written = sum(pool.imap_unordered(write_cache, paths))
    print(f"assert_cache: {written} of {len(paths)} modules rewritten", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
