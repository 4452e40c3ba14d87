"""The framework's settings page (``sharedcrawl/docs/settings.md``), generated from its one table.

Every setting's default is in :data:`~scrapy_sharedcrawl.defaults.SETTINGS` and its meaning in
:data:`~scrapy_sharedcrawl.defaults.DESCRIPTIONS`; ``python -m scrapy_sharedcrawl.settings_doc``
prints the table, ``--write`` puts it into the page (its test fails when they differ). A project
that documents the framework's settings on its own page reads the same two tables.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any

from scrapy_sharedcrawl.defaults import DEFAULTS_IN_WORDS, DESCRIPTIONS, SETTINGS

PAGE = Path(__file__).resolve().parents[1] / "docs" / "settings.md"
HEADER = "| setting | default | meaning |"
#: The descriptions' links are written for the repository's docs/ pages.
DOCS_LINK = re.compile(r"\]\((?![a-z][a-z+.-]*:)([\w-]+\.md)")


def shown(value: Any) -> str:
    """A default as a table shows it: ``*(empty)*``, or the value as code."""
    if value is None or value == "" or value == {} or value == []:
        return "*(empty)*"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value)
    return f"`` {text} ``" if "`" in text else f"`{text}`"


def default_of(name: str) -> str:
    """A framework setting's default as its row says it."""
    return DEFAULTS_IN_WORDS.get(name) or shown(SETTINGS[name])


def table() -> str:
    """The page's table: every setting in the order :data:`SETTINGS` declares them."""
    lines = [HEADER, "|---|---|---|"]
    for name in SETTINGS:
        meaning = DOCS_LINK.sub(r"](../../docs/\1", DESCRIPTIONS[name])
        lines.append(f"| `{name}` | {default_of(name)} | {meaning} |")
    return "\n".join(lines)


def replace_table(text: str, header: str, new: str) -> str:
    """``text`` with the table under ``header`` replaced by ``new``."""
    lines = text.split("\n")
    start = lines.index(header)
    end = start
    while end < len(lines) and lines[end].startswith("|"):
        end += 1
    return "\n".join([*lines[:start], new, *lines[end:]])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--write", action="store_true", help=f"put the table into {PAGE}")
    args = parser.parse_args(argv)
    if not args.write:
        sys.stdout.write(table() + "\n")
        return 0
    PAGE.write_text(replace_table(PAGE.read_text(encoding="utf-8"), HEADER, table()), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
