"""Generate the Python code for proto/ into trademesh/ (messages, gRPC stubs, .pyi).

    python ops/scripts/gen_proto.py          # regenerate trademesh/<area>/
    python ops/scripts/gen_proto.py --check  # exit 1 when one is stale

The generated modules mirror the proto packages: trademesh.<area>.v1.<file>_pb2, beside the
hand-written trademesh.core, trademesh.gateway and trademesh.venues (no proto package takes one of
those names). Nothing generated is edited by hand.
"""

from __future__ import annotations

import argparse
import filecmp
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROTO_DIR = ROOT / "proto"
PACKAGE = "trademesh"
PACKAGE_DIR = ROOT / PACKAGE
# The hand-written packages beside the generated ones: never compared, never replaced.
HAND_WRITTEN = frozenset({"core", "gateway", "venues", "__pycache__"})


def _plugin(name: str) -> str:
    path = Path(sys.executable).parent / name
    if not path.exists():
        sys.exit(f"gen_proto: {name} not found next to {sys.executable}; install mypy-protobuf")
    return str(path)


def _protoc_include() -> str:
    import grpc_tools

    return str(Path(grpc_tools.__file__).parent / "_proto")


def generate(out: Path) -> None:
    protos = sorted(p.relative_to(PROTO_DIR).as_posix() for p in PROTO_DIR.rglob("*.proto"))
    cmd = [
        sys.executable,
        "-m",
        "grpc_tools.protoc",
        f"-I{PROTO_DIR}",
        f"-I{_protoc_include()}",
        f"--plugin=protoc-gen-mypy={_plugin('protoc-gen-mypy')}",
        f"--plugin=protoc-gen-mypy_grpc={_plugin('protoc-gen-mypy_grpc')}",
        f"--python_out={out}",
        f"--grpc_python_out={out}",
        f"--mypy_out={out}",
        f"--mypy_grpc_out={out}",
        *protos,
    ]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"gen_proto: protoc failed:\n{done.stderr}")
    for folder in [out / PACKAGE, *(p for p in (out / PACKAGE).rglob("*") if p.is_dir())]:
        (folder / "__init__.py").touch()
    (out / PACKAGE / "py.typed").touch()


def _differences(left: Path, right: Path) -> list[str]:
    cmp = filecmp.dircmp(left, right, ignore=[*HAND_WRITTEN])
    found = [f"only in {left}: {n}" for n in cmp.left_only]
    found += [f"only in {right}: {n}" for n in cmp.right_only]
    _, mismatch, errors = filecmp.cmpfiles(left, right, cmp.common_files, shallow=False)
    found += [f"differs: {left / n}" for n in mismatch + errors]
    for sub in cmp.common_dirs:
        if sub != "__pycache__":
            found += _differences(left / sub, right / sub)
    return found


def _replace_generated(fresh: Path) -> None:
    """Every generated entry of trademesh/ replaced by the fresh one; a stale one removed."""
    PACKAGE_DIR.mkdir(exist_ok=True)
    for old in PACKAGE_DIR.iterdir():
        if old.name not in HAND_WRITTEN:
            shutil.rmtree(old) if old.is_dir() else old.unlink()
    for new in fresh.iterdir():
        (shutil.copytree if new.is_dir() else shutil.copy2)(new, PACKAGE_DIR / new.name)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail when the generated code is stale")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        fresh = Path(tmp)
        generate(fresh)
        if args.check:
            stale = _differences(fresh / PACKAGE, PACKAGE_DIR)
            stale = [s for s in stale if "__pycache__" not in s]
            for line in stale:
                print(f"gen_proto: stale: {line}", file=sys.stderr)
            if stale:
                print(
                    "gen_proto: run `python ops/scripts/gen_proto.py` and commit trademesh/", file=sys.stderr
                )
            return 1 if stale else 0
        _replace_generated(fresh / PACKAGE)
    print(f"gen_proto: wrote {PACKAGE_DIR}'s generated packages")
    return 0


if __name__ == "__main__":
    sys.exit(main())
