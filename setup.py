"""The wheel's build step beyond pyproject.toml (which holds everything else): a wheel carries
Studio's built files (trademesh/gateway/studio/dist, package data of `trademesh.gateway`), so a
wheel built without them, or with a build older than Studio's sources, is refused, saying how
to build them (`./dev wheel` builds Studio and then the wheel: docs/install.md). An editable
install (./dev's `uv pip install -e`) reads Studio from the checkout and needs no build.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from setuptools import setup  # type: ignore[import-untyped]
from setuptools.command.build_py import build_py  # type: ignore[import-untyped]

STUDIO = Path(__file__).resolve().parent / "trademesh" / "gateway" / "studio"
HOW = (
    "build Studio first: `./dev wheel` builds it and then the wheel (into dist/), or "
    "`cd trademesh/gateway/studio && npm ci && npm run build` (docs/install.md)"
)


def studio_problem(studio: Path = STUDIO) -> str | None:
    """Why trademesh/gateway/studio/dist cannot go into a wheel, or None when it can."""
    dist = studio / "dist"
    index = dist / "index.html"
    if not index.is_file():
        return f"Studio is not built: no {index}"
    html = index.read_text(encoding="utf-8")
    assets = re.findall(r'(?:src|href)="/(assets/[^"]+)"', html)
    missing = [a for a in assets if not (dist / a).is_file()]
    if not any(a.endswith(".js") for a in assets) or missing:
        return f"Studio's build in {dist} is incomplete (index.html's assets {missing or assets})"
    # Its sources, where they are (a checkout; an sdist carries only the build).
    sources = [p for p in (studio / "src").rglob("*") if p.is_file()] if (studio / "src").is_dir() else []
    sources += [p for p in (studio / n for n in ("index.html", "package-lock.json")) if p.is_file()]
    newer = [p for p in sources if p.stat().st_mtime > index.stat().st_mtime]
    if newer:
        return f"Studio's build in {dist} is older than its sources ({newer[0].relative_to(studio)})"
    return None


class BuildPyWithStudio(build_py):  # type: ignore[misc]
    """build_py that refuses a wheel without Studio's build, and starts from an empty build/lib:
    setuptools keeps build/lib between builds and a wheel takes all of it (a module deleted since,
    Studio's assets of an older build under other hashed names)."""

    def run(self) -> None:
        if not self.editable_mode:
            problem = studio_problem()
            if problem is not None:
                raise SystemExit(f"trademesh's wheel carries Studio. {problem}:\n{HOW}")
            shutil.rmtree(self.build_lib, ignore_errors=True)
        super().run()


setup(cmdclass={"build_py": BuildPyWithStudio})
