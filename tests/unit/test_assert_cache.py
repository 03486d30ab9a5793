"""tests/assert_cache.py: the rewritten-assert cache `./dev test` writes before pytest starts is
the one pytest itself writes, found where pytest looks, for the modules pytest rewrites."""

from __future__ import annotations

import marshal
import os
import subprocess
import sys
from pathlib import Path

from _pytest.assertion.rewrite import PYC_TAIL

from tests.assert_cache import modules, plugin_modules, write_cache

_FAILING = "def test_sum():\n    total = 1 + 1\n    assert total == 3, 'not three'\n"


def _tree(root: Path) -> Path:
    tests = root / "tests"
    (tests / "unit").mkdir(parents=True)
    (tests / "__init__.py").write_text("")
    (tests / "unit" / "__init__.py").write_text("")
    (tests / "conftest.py").write_text('pytest_plugins = ["tests.helper_plugin"]\n')
    (tests / "helper_plugin.py").write_text("def pytest_configure(config):\n    assert config\n")
    (tests / "unit" / "support.py").write_text("VALUE = 1\n")
    (tests / "unit" / "test_sum.py").write_text(_FAILING)
    return tests


def _pyc(path: Path) -> Path:
    return path.parent / "__pycache__" / (path.name[:-3] + PYC_TAIL)


def test_the_modules_are_the_ones_pytest_rewrites(tmp_path: Path) -> None:
    tests = _tree(tmp_path)
    assert {path.relative_to(tests).as_posix() for path in modules(tests)} == {
        "conftest.py",
        "helper_plugin.py",
        "unit/test_sum.py",
    }


def test_the_installed_plugins_modules_are_listed() -> None:
    names = {path.name for path in plugin_modules()}
    assert {"_hypothesis_pytestplugin.py", "pytest_timeout.py"} <= names


def test_the_cache_is_what_pytest_writes_and_pytest_reads_it(tmp_path: Path) -> None:
    tests = _tree(tmp_path)
    module = tests / "unit" / "test_sum.py"
    assert write_cache(module)
    assert not write_cache(module)  # valid: left as it is
    ours = _pyc(module).read_bytes()

    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPATH"] = str(tmp_path)
    _pyc(module).unlink()
    run = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist", str(module)]
    failed = subprocess.run(run, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    theirs = _pyc(module).read_bytes()
    assert ours[:16] == theirs[:16]  # magic, flags, the source's hash
    assert marshal.loads(ours[16:]) == marshal.loads(theirs[16:])
    assert "assert 2 == 3" in failed.stdout  # the rewritten assert's explanation

    module.write_text(_FAILING.replace("3", "4"))
    assert write_cache(module)  # the source changed: its cache is stale, written again


def test_a_module_that_does_not_compile_is_left_to_pytest(tmp_path: Path) -> None:
    module = tmp_path / "test_broken.py"
    module.write_text("def test_broken(:\n    assert True\n")
    assert not write_cache(module)
    assert not _pyc(module).exists()
