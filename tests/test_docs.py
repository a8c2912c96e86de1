"""The README stays a front door and the benchmark tables stay generated: what report.py renders from
benchmarks/results/*.json is what README.md and docs/benchmarks.md hold (mkdocs build --strict checks the site)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
README_MAX_LINES = 300

sys.path.insert(0, str(ROOT / "benchmarks"))
import report  # noqa: E402


@pytest.mark.parametrize("section", report.sections(), ids=lambda s: f"{s.path.name}:{s.start}")
def test_generated_section_matches_the_results(section: report.Section) -> None:
    assert report.written(section) == section.body, (
        f"{section.path.relative_to(ROOT)} between {section.start} and {section.end} is not what benchmarks/results/*.json "
        "gives: run `.venv/bin/python benchmarks/report.py` (never edit generated tables by hand)")


def test_readme_is_short() -> None:
    lines = len(README.read_text().splitlines())
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines (at most {README_MAX_LINES}): move reference text into docs/"


def test_readme_links_point_at_files() -> None:
    """The README is not part of the MkDocs site, so its --strict build does not check these links."""
    targets = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", README.read_text())
    local = [t for t in targets if not re.match(r"[a-z]+:", t)]
    assert local, "README.md links to no page: the docs table is gone"
    missing = [t for t in local if not (ROOT / t).exists()]
    assert not missing, f"README.md links to files that do not exist: {missing}"
