"""The README and docs/ link to pages and sections that exist; the README stays a short read."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.M | re.S)


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading.

    >>> slug("The node's side: `[uplink.tls]`")
    'the-nodes-side-uplinktls'
    """
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """The anchors of ``page``'s headings (outside code blocks)."""
    text = FENCE.sub("", page.read_text(encoding="utf-8"))
    return {slug(m) for m in re.findall(r"^#+ (.+)$", text, re.M)}


def broken_links(page: Path, root: Path = ROOT) -> list[str]:
    """Each relative link of ``page`` whose file or heading does not exist, as ``target: why``."""
    found = []
    for target in LINK.findall(FENCE.sub("", page.read_text(encoding="utf-8"))):
        if re.match(r"[a-z]+:", target):
            continue  # http:, https:, mailto: are not ours to check
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        if not linked.exists():
            found.append(f"{target}: no file {linked.relative_to(root)}")
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
            found.append(f"{target}: no heading #{anchor} in {linked.relative_to(root)}")
    return found


@pytest.mark.parametrize("page", PAGES, ids=[p.relative_to(ROOT).as_posix() for p in PAGES])
def test_every_relative_link_reaches_its_page_and_heading(page):
    assert broken_links(page) == []


def test_a_link_to_a_missing_page_or_heading_is_named(tmp_path):
    (tmp_path / "other.md").write_text("# Other page\n")
    page = tmp_path / "page.md"
    page.write_text(
        "# Top\n\n[a](#top) [b](#nowhere) [c](gone.md) [d](https://example.org)\n"
        "[e](other.md#other-page) [f](other.md#top)\n\n```toml\n[x](#in-code)\n```\n"
    )
    assert broken_links(page, tmp_path) == [
        "#nowhere: no heading #nowhere in page.md",
        "gone.md: no file gone.md",
        "other.md#top: no heading #top in other.md",
    ]


def test_the_readme_is_a_short_read_with_the_two_commands_ci_relies_on():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "./dev demo" in readme and "./dev test" in readme
    lines = readme.count("\n")
    assert lines <= 150, f"README.md has {lines} lines: reference material belongs in docs/, linked from it"
