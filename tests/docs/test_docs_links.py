"""The README stays a five-minute read and the docs hold together (issue 20): every relative link and
``#anchor`` of the README, ``docs/*.md`` and the runbook's and examples' READMEs leads somewhere, every
repository path the README and ``docs/`` name in backticks exists, and the README's test command is
the one CI runs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from harness import ROOT, docs_page

#: The README, the docs, the runbook and examples' READMEs that link into them, and the framework's.
PAGES = [
    ROOT / "README.md",
    *sorted((ROOT / "docs").glob("*.md")),
    ROOT / "deploy" / "README.md",
    *sorted((ROOT / "examples").rglob("README.md")),
    ROOT / "sharedcrawl" / "README.md",
    *sorted((ROOT / "sharedcrawl" / "docs").glob("*.md")),
]
#: The pages whose backticked paths are the repository's (the runbook names files an operator makes).
DOCS = [page for page in PAGES if page.parent in (ROOT, ROOT / "docs")]
#: Where a path a page names in backticks must exist (the repository's own folders).
REPO_FOLDERS = ("tests", "bench", "deploy", "examples", "sharedcrawl", "scrapy_sharedcrawl", "solidot_spider")
REPO_PATH = re.compile(rf"(?:{'|'.join(REPO_FOLDERS)})/[\w./-]*")
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
CODE_SPAN = re.compile(r"(`+)(.+?)\1")


def prose(text: str) -> str:
    """``text`` without its fenced code blocks (a ``# comment`` in a shell block is no heading)."""
    return re.sub(r"^```.*?^```", "", text, flags=re.M | re.S)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """Every anchor of ``page``'s headings, repeated ones numbered as GitHub numbers them."""
    seen: dict[str, int] = {}
    found = set()
    for heading in re.findall(r"^#{1,6} (.+)$", prose(page.read_text(encoding="utf-8")), flags=re.M):
        base = slug(heading)
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def links(page: Path) -> list[str]:
    return LINK.findall(prose(page.read_text(encoding="utf-8")))


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(ROOT)))
def test_every_relative_link_and_anchor_resolves(page: Path) -> None:
    broken = []
    for link in links(page):
        if re.match(r"[a-z][a-z+.-]*:", link):  # https:, mailto:: not ours to check offline
            continue
        path, _, anchor = link.partition("#")
        target = (page.parent / path).resolve() if path else page
        if not target.exists():
            broken.append(f"{link}: no {target.relative_to(ROOT) if target.is_relative_to(ROOT) else target}")
        elif anchor and target.suffix == ".md" and anchor not in anchors(target):
            broken.append(f"{link}: {target.name} has no heading #{anchor}")
    assert not broken, f"{page.relative_to(ROOT)}: " + "; ".join(broken)


@pytest.mark.parametrize("page", DOCS, ids=lambda page: str(page.relative_to(ROOT)))
def test_every_repository_path_named_in_backticks_exists(page: Path) -> None:
    """A code span whose first word is a path in the repository's folders (``tests/site/test_x.py``,
    ``bench/soak.py --stories 20000``, ``deploy/``) names a file or folder that is there; globs and
    placeholders (``*``, ``<spider>``, ``{…}``) are not paths."""
    named = set()
    for _, span in CODE_SPAN.findall(prose(page.read_text(encoding="utf-8"))):
        words = span.strip().split()
        if words and (match := REPO_PATH.fullmatch(words[0].split("::")[0].rstrip(".,:;)"))):
            named.add(match[0])
    missing = sorted(path for path in named if not (ROOT / path).exists())
    assert named or page.name != "architecture.md", "the architecture page names the repository's files"
    assert not missing, f"{page.relative_to(ROOT)} names paths that don't exist: {missing}"


def test_the_readme_is_read_in_five_minutes() -> None:
    lines = docs_page("README").splitlines()
    assert len(lines) <= 200, f"README.md has {len(lines)} lines: move a section into docs/"


def test_the_readme_links_every_docs_page() -> None:
    linked = {Path(link.partition("#")[0]).name for link in links(ROOT / "README.md")}
    pages = {page.name for page in (ROOT / "docs").glob("*.md")}
    assert pages <= linked, f"docs pages the README doesn't link: {sorted(pages - linked)}"


def test_the_readmes_test_commands_are_the_ones_ci_runs() -> None:
    """The README's and docs/testing.md's commands, in order: the framework's suite in its own
    environment, then the project's."""
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    run = [line.strip() for line in ci if "pytest" in line]
    assert len(run) == 2 and "sharedcrawl" in run[0], run
    for name, heading in (("README", "\n## Tests\n"), ("testing", "\n```sh\n")):
        page = docs_page(name)
        section = page[page.index(heading) :]
        block = re.search(r"```sh\n(.*?)```", section, re.S)
        assert block, f"{name}: the Tests section has a sh block"
        commands = [
            line.strip() for line in block[1].splitlines() if line.strip() and not line.startswith("#")
        ]
        assert [command for command in commands if "pytest" in command] == run, name


def test_every_design_note_a_module_names_exists() -> None:
    """A module docstring's ``docs/<page>.md#<anchor>`` (its design notes) names a page and heading that
    are there, so moving or renaming a section can't leave a docstring pointing nowhere."""
    pointer = re.compile(r"docs/([\w-]+\.md)#([\w-]+)")
    broken = []
    for package in ("sharedcrawl/scrapy_sharedcrawl", "solidot_spider"):
        for module in sorted((ROOT / package).rglob("*.py")):
            for page, anchor in pointer.findall(module.read_text(encoding="utf-8")):
                target = ROOT / "docs" / page
                if not target.exists() or anchor not in anchors(target):
                    broken.append(f"{module.relative_to(ROOT)}: docs/{page}#{anchor}")
    assert not broken, "design notes that aren't there: " + "; ".join(broken)
