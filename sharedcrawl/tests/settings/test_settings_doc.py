"""The framework documents its settings once: every setting in ``defaults.SETTINGS`` has its meaning
in ``defaults.DESCRIPTIONS``, and ``docs/settings.md``'s table is what ``python -m
scrapy_sharedcrawl.settings_doc`` generates from them (run it with ``--write`` after a change)."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from scrapy_sharedcrawl import settings_doc
from scrapy_sharedcrawl.defaults import DEFAULTS_IN_WORDS, DESCRIPTIONS, SETTINGS

PAGE = Path(__file__).resolve().parents[2] / "docs" / "settings.md"


def test_every_setting_has_a_meaning_and_nothing_else_has_one() -> None:
    assert sorted(set(SETTINGS) ^ set(DESCRIPTIONS)) == []
    assert all(text.strip() and "|" not in text for text in DESCRIPTIONS.values())
    assert set(DEFAULTS_IN_WORDS) <= set(SETTINGS)


def test_the_page_holds_the_generated_table() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "scrapy_sharedcrawl.settings_doc"],
        cwd=tempfile.gettempdir(),  # no project's scrapy.cfg above it
        env={"PATH": "/usr/bin:/bin", "REDIS_URL": "redis://elsewhere"},  # the table ignores the environment
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    lines = PAGE.read_text(encoding="utf-8").splitlines()
    start = lines.index(settings_doc.HEADER)
    end = next((i for i in range(start, len(lines)) if not lines[i].startswith("|")), len(lines))
    assert "\n".join(lines[start:end]) == result.stdout.strip(), (
        "run `python -m scrapy_sharedcrawl.settings_doc --write`"
    )
    assert len(lines[start:end]) == len(SETTINGS) + 2


def test_a_link_into_the_repositorys_docs_is_made_relative_to_the_page() -> None:
    row = next(line for line in settings_doc.table().splitlines() if line.startswith("| `REDIS_SENTINELS`"))
    assert "](../../docs/deploying.md#" in row
