"""Every reference to a section of docs/benchmarks.md (or of its history, docs/benchmarks-history.md)
names a section the page has: "docs/benchmarks.md §N", "..., section N", '..., "A title"'.

docs/benchmarks.md is the page of current figures: one table per area, headed with the section
numbers of the per-session record it replaced (docs/benchmarks-history.md, "## N. ..."), so the
references the other docs and the code make keep pointing at something that exists."""

from __future__ import annotations

import functools
import os
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "benchmarks.md"
HISTORY = ROOT / "docs" / "benchmarks-history.md"
SKIPPED_DIRS = {".git", ".venv", "node_modules", ".peer-venv", "__pycache__", ".mypy_cache", ".ruff_cache"}

# "benchmarks.md §4", "benchmarks.md, section 17", "[benchmarks.md](benchmarks.md) §9",
# "benchmarks.md\n§10" (a line broken in the middle), 'benchmarks-history.md §4, "a title"',
# 'benchmarks.md, "The account stream"', 'benchmarks.md ("A title")'.
_QUOTED = r'"(?P<{}>[^"\n]{{1,100}}(?:\n[ \t#]*[^"\n]{{1,100}})?)"'
REFERENCE = re.compile(
    r"benchmarks(?P<history>-history)?\.md[)\]]*"
    r"(?:[\s,#(]*(?:§|sections?\s+)(?P<number>\d+)(?:,\s*" + _QUOTED.format("detail") + ")?"
    r"|(?:,\s*|\s*\(\s*)" + _QUOTED.format("title") + ")"
)
PAGE_SECTION = re.compile(r"§(\d+)")
HISTORY_SECTION = re.compile(r"^## (\d+)\. ", re.MULTILINE)


def _normal(text: str) -> str:
    return " ".join(text.replace("#", " ").split()).casefold()


@functools.cache
def _page_headings() -> tuple[str, ...]:
    return tuple(line for line in PAGE.read_text().splitlines() if line.startswith("#"))


@functools.cache
def _page_sections() -> frozenset[int]:
    return frozenset(int(number) for line in _page_headings() for number in PAGE_SECTION.findall(line))


@functools.cache
def _history_sections() -> frozenset[int]:
    return frozenset(int(number) for number in HISTORY_SECTION.findall(HISTORY.read_text()))


@functools.cache
def _texts() -> tuple[str, str]:
    """The page's headings and the whole history, normalised, as a quoted title is looked up."""
    return _normal("\n".join(_page_headings())), _normal(HISTORY.read_text())


def _broken(text: str) -> list[str]:
    """The references in `text` to a section, or a title, the page (or its history) does not have."""
    page, history, headings, history_text = _page_sections(), _history_sections(), *_texts()
    broken = []
    for match in REFERENCE.finditer(text):
        in_history = match.group("history") is not None
        if match.group("number"):
            missing = int(match.group("number")) not in (history if in_history else page)
            detail = match.group("detail")
            missing = missing or bool(detail and in_history and _normal(detail) not in history_text)
        else:
            missing = _normal(match.group("title")) not in (history_text if in_history else headings)
        if missing:
            broken.append(match.group(0))
    return broken


def _sources() -> list[Path]:
    found = []
    for directory, subdirectories, files in os.walk(ROOT):
        subdirectories[:] = [name for name in subdirectories if name not in SKIPPED_DIRS]
        found += [Path(directory, name) for name in files if name.endswith((".md", ".py"))]
    return sorted(set(found) - {PAGE, HISTORY, Path(__file__).resolve()})


def test_the_page_keeps_every_section_number_of_its_history() -> None:
    history = _history_sections()
    assert history == set(range(1, 31))
    assert _page_sections() == history


def test_the_page_is_a_page() -> None:
    assert len(PAGE.read_text().splitlines()) < 400


def test_every_reference_to_a_benchmarks_section_names_one_that_exists() -> None:
    referenced = 0
    broken: list[str] = []
    for path in _sources():
        text = path.read_text(errors="replace")
        referenced += len(REFERENCE.findall(text))
        broken.extend(f"{path.relative_to(ROOT)}: {reference!r}" for reference in _broken(text))
    assert referenced > 20  # the pattern still finds the repository's references
    assert broken == []


def test_a_reference_to_a_missing_section_or_title_is_found() -> None:
    text = (
        "docs/benchmarks.md §99; docs/benchmarks.md, section 4; docs/benchmarks.md\n§10;\n"
        'docs/benchmarks.md, "No such table"; [benchmarks.md](benchmarks.md) §31;\n'
        'docs/benchmarks-history.md §4, "a subsection that never was";\n'
        'docs/benchmarks-history.md §4, "the market rows COPied straight into their tables".\n'
    )
    assert _broken(text) == [
        "benchmarks.md §99",
        'benchmarks.md, "No such table"',
        "benchmarks.md) §31",
        'benchmarks-history.md §4, "a subsection that never was"',
    ]
