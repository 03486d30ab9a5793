"""trademesh as a product you install (issue 61; docs/install.md): the wheel built from the tree
carries every module and data file the mesh reads and Studio's build, and, installed in a fresh
virtual environment outside any checkout, `trademesh up` serves Studio and the chain trades.

Offline, on what ./dev has already installed: the wheel is built by the setuptools in this
test's environment (no build isolation: nothing downloaded), from a copy of the tree as git
sees it (tracked and untracked-but-not-ignored files, and Studio's build, which is ignored), so
neither the checkout's build/ nor anything else it holds untracked can reach the wheel. The
scratch environment gets the wheel and its dependencies from uv's cache (`--offline`), at the
versions .venv holds (its freeze as constraints): the wheel's own requirements are resolved,
none borrowed from .venv.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import tomllib
import urllib.request
import zipfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.integration.test_up import HTTP_TIMEOUT_S, Output, _check_trace, _end_group, _grpc_web
from tests.unit.test_wheel_top_level import TOP_LEVEL
from trademesh.ledger.v1 import ledger_pb2 as lg

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
STUDIO_DIST = ROOT / "trademesh" / "gateway" / "studio" / "dist"
# npm projects inside the packages' directories: their sources are not the wheel's (Studio's
# build is), and node-ref is a venue in TypeScript the tests start from the checkout.
NOT_PACKAGED = ("trademesh/gateway/studio/", "trademesh/venues/node_ref/")
# `up --without`: services neither the chain (signal to transfer) nor Studio's pages checked here
# need; each costs its start (~1 s of CPU) and its running beside the chain's.
LEFT_OUT = ("backtester", "overwatch", "screener", "supervisor")
# What the scratch environment must not inherit from this one (a checkout on sys.path, .venv).
UNSET = (
    "PYTHONPATH",
    "PYTHONHOME",
    "VIRTUAL_ENV",
    "PYTHONDONTWRITEBYTECODE",  # as ./dev up: every service loads the modules the first compiled
    "REDIS_URL",
    "DATABASE_URL",
    "TRADEMESH_TOKEN",
    "TRADEMESH_TRADE_TOKEN",
)


def _run(
    args: list[str | Path], timeout_s: float, cwd: Path | None = None, env: dict[str, str] | None = None
) -> str:
    done = subprocess.run(
        [str(a) for a in args],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        cwd=cwd,
        env=env,
        check=False,
    )
    assert done.returncode == 0, (
        f"{args} exited {done.returncode}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    )
    return done.stdout


def _tree_files() -> list[str]:
    """The checkout's files as a fresh clone plus work in progress has them."""
    listed = _run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], 60, cwd=ROOT)
    return [name for name in listed.split("\0") if name and (ROOT / name).is_file()]


def _link_or_copy(source: str | os.PathLike[str], target: str | os.PathLike[str]) -> None:
    """A hard link where the scratch directory shares the checkout's file system, else a copy:
    a build only reads its tree's files (it writes build/ and the egg-info beside them), and
    linked, ~35 MB are neither written nor freed again (with `discard`, freeing them took seconds).
    Both keep the times: setup.py compares Studio's build with its sources by them."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def _copy_tree(files: list[str], into: Path) -> None:
    for name in files:
        (into / name).parent.mkdir(parents=True, exist_ok=True)
        _link_or_copy(ROOT / name, into / name)
    shutil.copytree(
        STUDIO_DIST, into / "trademesh" / "gateway" / "studio" / "dist", copy_function=_link_or_copy
    )


def _expected_wheel_files(files: list[str]) -> set[str]:
    """Every tracked file of the packages (trademesh installs as trademesh), and Studio's build."""
    expected = set()
    for name in files:
        if name.startswith(NOT_PACKAGED) or "/__pycache__/" in name:
            continue
        if name.startswith(("trademesh/core/", "trademesh/gateway/", "trademesh/venues/")):
            expected.add(name)
        elif name.startswith("trademesh/"):
            expected.add(name.removeprefix("gen/"))
    expected |= {str(p.relative_to(ROOT)) for p in STUDIO_DIST.rglob("*") if p.is_file()}
    return expected


def _build(tree: Path, out: Path, *how: str) -> Path:
    """The wheel uv builds from the tree into out, offline, with this environment's setuptools
    (the dev extra pins the one [build-system] names, which ./dev wheel builds with)."""
    (backend,) = tomllib.loads((ROOT / "pyproject.toml").read_text())["build-system"]["requires"]
    assert backend == f"setuptools=={importlib.metadata.version('setuptools')}", (
        f"this environment's setuptools is not the build backend {backend}: run ./dev's install"
    )
    _run(
        [sys.executable, "-m", "uv", "build", *how, "--offline", "--no-build-isolation",
         "--python", sys.executable, "--out-dir", out, tree],
        300,
    )  # fmt: skip
    (wheel,) = out.glob("trademesh-*.whl")
    return wheel


@pytest.fixture
def scratch() -> Iterator[Path]:
    """Not under pytest's temp root (test_up.py's up_dir says why: the embedded PostgreSQL)."""
    directory = Path(tempfile.mkdtemp(prefix="trademesh-wheel-"))
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


# Built and installed in 5-20 s; the mesh's first traded signal 1-2 minutes after it serves.
@pytest.mark.timeout(600)
def test_the_wheel_installed_outside_the_checkout_serves_studio_and_trades(scratch: Path) -> None:
    if not (STUDIO_DIST / "index.html").is_file():
        pytest.fail(f"Studio is not built ({STUDIO_DIST}): run `./dev test`, or `./dev wheel`")
    uv: list[str | Path] = [sys.executable, "-m", "uv"]
    files = _tree_files()
    tree, out = scratch / "tree", scratch / "wheel"
    _copy_tree(files, tree)
    # A plain `uv build` (or `python -m build`): an sdist, then the wheel built from it; from a
    # copy of its own (a build writes into its tree), meanwhile.
    _copy_tree(files, scratch / "tree-sdist")
    pool = ThreadPoolExecutor(1, thread_name_prefix="sdist")
    from_sdist_built = pool.submit(_build, scratch / "tree-sdist", scratch / "sdist")
    pool.shutdown(wait=False)
    began = time.monotonic()
    wheel = _build(tree, out, "--wheel")  # ./dev wheel's way: straight from the tree
    built_s = time.monotonic() - began
    with zipfile.ZipFile(wheel) as archive:
        packaged = {n for n in archive.namelist() if ".dist-info/" not in n}
        installed_studio = {
            n: archive.read(n) for n in packaged if n.startswith("trademesh/gateway/studio/dist/")
        }
    expected = _expected_wheel_files(files)
    assert packaged == expected, (
        f"missing from the wheel: {sorted(expected - packaged)[:20]}; "
        f"in the wheel, not the tree: {sorted(packaged - expected)[:20]}"
    )
    assert {name.partition("/")[0] for name in packaged} == TOP_LEVEL, sorted(packaged)[:20]
    # A scratch environment of the same Python, holding the wheel and its requirements only.
    began = time.monotonic()
    venv = scratch / "venv"
    constraints = scratch / "constraints.txt"
    constraints.write_text(_run([*uv, "pip", "freeze", "--exclude-editable", "--python", sys.executable], 60))
    _run([*uv, "venv", "--offline", "--quiet", "--python", sys.executable, venv], 120)
    python = venv / "bin" / "python"
    # Offline: from uv's cache, which ./dev's `uv pip install` filled.
    _run(
        [*uv, "pip", "install", "--offline", "--quiet", "--python", python, "--constraint", constraints,
         wheel],
        300,
    )  # fmt: skip
    print(f"wheel {wheel.stat().st_size:,} bytes, built in {built_s:.1f} s; installed in "
          f"{time.monotonic() - began:.1f} s")  # fmt: skip
    with zipfile.ZipFile(from_sdist_built.result()) as archive:
        from_sdist = {n for n in archive.namelist() if ".dist-info/" not in n}
    assert from_sdist == packaged, (
        f"the wheel built from the sdist lacks {sorted(packaged - from_sdist)[:20]}, "
        f"adds {sorted(from_sdist - packaged)[:20]}"
    )

    run = scratch / "run"
    run.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in UNSET}
    site = json.loads(
        _run(
            [python, "-c", "import json, sys, trademesh, trademesh.core, trademesh.gateway, trademesh.venues;"
             " t = trademesh; print(json.dumps("
             "{'files': [m.__file__ for m in (t, t.core, t.gateway, t.venues)], 'path': sys.path,"
             " 'site': __import__('sysconfig').get_path('purelib'),"
             " 'owners': __import__('importlib.metadata').metadata.packages_distributions()}))"],
            60, cwd=run, env=env,
        )
    )  # fmt: skip
    site_packages = Path(site["site"]).resolve()
    assert site_packages.is_relative_to(venv.resolve()), site
    for module in site["files"]:
        assert Path(module).resolve().is_relative_to(site_packages), f"{module} is not the installed wheel's"
    assert not [p for p in site["path"] if p and Path(p).resolve().is_relative_to(ROOT)], site["path"]
    # None of the wheel's requirements ships an import package of ours (docs/install.md).
    clashes = {n: site["owners"][n] for n in TOP_LEVEL if set(site["owners"].get(n, [])) != {"trademesh"}}
    assert not clashes, clashes
    # Its bytecode, as pip's install writes it (uv's leaves it to the first import): else the
    # mesh's services, starting together, and the gateway's first gRPC-web call (it imports every
    # contract) each compiled the same modules, 20-40 s of a loaded machine's start.
    _run([python, "-m", "compileall", "-q", "-j", "0", site_packages / "trademesh"], 120, cwd=run, env=env)

    data = run / "data"
    # The mesh the chain and Studio need: the services that only watch it or answer on request
    # left out (LEFT_OUT). Their modules and data files are the wheel's all the same (the file
    # list above); test_up.py starts every service.
    up = ["up", "--free-ports", "--data-dir", str(data), "--status-every", "2"]
    up += ["--without", ",".join(LEFT_OUT)]
    process = subprocess.Popen(
        [str(venv / "bin" / "trademesh"), *up],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        cwd=run,
        start_new_session=True,  # its own process group, so a failed test can end all of it
    )
    try:
        _check_installed_mesh(process, data, python, installed_studio)
    finally:
        _end_group(process)


def _check_installed_mesh(
    process: subprocess.Popen[str], data: Path, python: Path, studio: dict[str, bytes]
) -> None:
    out = Output(process)
    out.wait_for(r"all services healthy", 240)
    # Every service runs the scratch environment's Python (each is `sys.executable -m ...`).
    pids = [int(m[1]) for m in (re.search(r"serving on \S+ \(pid (\d+)\)", x) for x in out.lines) if m]
    assert len(pids) >= 10, out.lines[-40:]
    for pid in pids:
        argv0 = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode()
        assert Path(argv0) == python, f"pid {pid} runs {argv0}"

    # Studio, from the installed package: its index.html and the script it loads, byte for byte.
    studio_url = out.wait_for(r"Studio: (http://\S+/) \(log in with the key in (\S+)\)", 10)[1]
    with urllib.request.urlopen(studio_url, timeout=HTTP_TIMEOUT_S) as page:
        assert page.status == 200
        index = page.read()
    assert index == studio["trademesh/gateway/studio/dist/index.html"]
    scripts = re.findall(rb'<script[^>]+src="/(assets/[^"]+\.js)"', index)
    assert scripts, index
    with urllib.request.urlopen(f"{studio_url}{scripts[0].decode()}", timeout=HTTP_TIMEOUT_S) as script:
        assert script.status == 200
        assert script.read() == studio[f"trademesh/gateway/studio/dist/{scripts[0].decode()}"]

    # The chain, on the shipped strategies, models, policies and migrations: a signal becomes the
    # advisor's intent, the inspector's order fills on the sim, and the ledger books the fill,
    # traced back to its signal; the books verify (test_up.py's checks, through the gateway).
    key = (data / "api-key").read_text().strip()
    out.wait_for(r"intents recorded [1-9]", 240)
    _check_trace(studio_url, key)
    verified = _grpc_web(
        studio_url, key, "trademesh.ledger.v1.Ledger/Verify", lg.VerifyRequest(), lg.VerifyResponse
    )
    assert verified.ok and verified.transfers > 0, verified

    process.send_signal(signal.SIGINT)
    assert process.wait(60) == 0
    out.wait_for(r"mesh\s+\| stopped", 10)
