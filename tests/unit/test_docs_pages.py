"""The README and docs/ stay readable and connected.

- The README opens with its two commands (the mesh, the whole test suite; .ci/run runs the
  second) and stays a page a newcomer reads in five minutes (200 lines at most), its overview
  screenshot in the repository.
- Every page of docs/ is 600 lines at most, split by topic when it grows; the per-session
  record, docs/benchmarks-history.md, is the one page exempt (history lives there and in git).
- Every relative link of the README and docs/ reaches a file that exists and, when it names an
  anchor, a heading of that page (GitHub's anchors: lower case, punctuation dropped, spaces as
  hyphens), so a page split leaves no link behind."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
EXEMPT = {"benchmarks-history.md"}
README_MAX_LINES = 200
PAGE_MAX_LINES = 600
COMMANDS = ("./dev up ", "./dev test ")
LINK = re.compile(r"\]\(([^)\s]+)\)")
HEADING = re.compile(r"^#{1,6} (.+)$")


def anchor(heading: str) -> str:
    """GitHub's anchor of a heading's text."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    found: set[str] = set()
    fenced = False
    for line in page.read_text().splitlines():
        if line.startswith("```"):
            fenced = not fenced
        heading = None if fenced else HEADING.match(line)
        if heading:
            found.add(anchor(heading[1]))
    return found


def broken_links(page: Path) -> list[str]:
    broken = []
    for target in LINK.findall(page.read_text()):
        if re.match(r"[a-z]+:", target):
            continue  # http:, https:, mailto:
        path, _, name = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        if not linked.exists():
            broken.append(f"{target} (no such file)")
        elif name and linked.suffix == ".md" and name not in anchors(linked):
            broken.append(f"{target} (no such heading)")
    return broken


def test_the_readme_opens_with_the_two_commands_and_ci_runs_the_second() -> None:
    lines = README.read_text().splitlines()
    assert lines[:3] == ["# trademesh", "", "```sh"]
    assert [line[: len(c)] for line, c in zip(lines[3:5], COMMANDS, strict=True)] == list(COMMANDS)
    assert lines[5] == "```"
    assert (ROOT / ".ci" / "run").read_text().rstrip().endswith("exec ./dev test")


def test_the_readme_is_short_and_its_screenshot_is_kept() -> None:
    text = README.read_text()
    assert len(text.splitlines()) <= README_MAX_LINES
    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert images and all((ROOT / image).is_file() for image in images), images


def test_every_docs_page_is_600_lines_at_most() -> None:
    long = {
        page.name: n
        for page in sorted(DOCS.glob("*.md"))
        if page.name not in EXEMPT and (n := len(page.read_text().splitlines())) > PAGE_MAX_LINES
    }
    assert long == {}, f"split these by topic: {long}"


def test_every_relative_link_of_the_readme_and_docs_resolves() -> None:
    broken = {
        page.name: found for page in [README, *sorted(DOCS.glob("*.md"))] if (found := broken_links(page))
    }
    assert broken == {}


def test_a_link_to_a_missing_heading_is_caught(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text("# A page\n\n## The `run` (core/x.py)\n\n```\n## not a heading\n```\n")
    page = tmp_path / "b.md"
    page.write_text("[ok](a.md#the-run-corexpy) [gone](a.md#not-a-heading) [no](c.md)\n")
    assert broken_links(page) == ["a.md#not-a-heading (no such heading)", "c.md (no such file)"]
