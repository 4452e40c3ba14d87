"""Every stat the code counts is named in one of the docs' stats tables (issue 25, row 21): docs/watching.md
and docs/refreshing.md.

Stat names are read from the source: ``inc_value``/``set_value``/``max_value`` calls and
``OncePerReason`` prefixes, with each module's ``STATS``/``STATS_PREFIX`` constant resolved and
``{…}`` parts read as "anything". A documented name covers itself and the stats under it
(``scheduler/dead`` covers ``scheduler/dead/<reason>``); ``…/x`` in a cell is ``x`` under the
parent of that cell's first name.
"""

from __future__ import annotations

import re
from pathlib import Path

from harness import docs_page

ROOT = Path(__file__).resolve().parents[2]
SOURCES = [
    *sorted((ROOT / "sharedcrawl" / "scrapy_sharedcrawl").rglob("*.py")),
    *sorted((ROOT / "solidot_spider").rglob("*.py")),
]
CALL = re.compile(
    r"(?:inc_value|set_value|max_value|min_value|OncePerReason)\(\s*(?:stats,\s*)?"
    r"(f?)\"([^\"]+)\"|(?:inc_value|set_value|max_value)\(\s*(STATS_PREFIX|STATS)\s*\+\s*f?\"([^\"]+)\""
)


def constants_of(path: Path) -> dict[str, str]:
    """A module's stats prefixes: its own ``STATS``/``STATS_PREFIX`` (an f-string over imported ones
    resolved) and those it imports from another module of ours (the scheduler's ``prefix.STATS``)."""
    text = path.read_text()
    constants: dict[str, str] = {}
    for module, name, alias in re.findall(
        r"^from ((?:scrapy_sharedcrawl|solidot_spider)[\w.]*) import (STATS|STATS_PREFIX)(?: as (\w+))?$",
        text,
        re.M,
    ):
        base = (ROOT / "sharedcrawl" if module.startswith("scrapy_sharedcrawl") else ROOT) / module.replace(
            ".", "/"
        )
        source = base.with_suffix(".py") if base.with_suffix(".py").exists() else base / "__init__.py"
        constants[alias or name] = constants_of(source)[name]
    for name, value in re.findall(r"^(STATS|STATS_PREFIX) = f?\"([^\"]*)\"", text, re.M):
        for key, known in constants.items():
            value = value.replace("{" + key + "}", known)
        constants[name] = value
    return constants


def counted() -> set[str]:
    """Stat names in the code, placeholders as ``*``."""
    names = set()
    for path in SOURCES:
        text = path.read_text()
        constants = constants_of(path)
        for _is_f, literal, constant, rest in CALL.findall(text):
            if literal:
                name = literal
                for key, value in constants.items():
                    name = name.replace("{" + key + "}", value)
            else:
                name = constants[constant] + rest
            if "/" not in name or name.startswith("{"):
                continue  # not a stat name of ours (a variable, a message)
            names.add(re.sub(r"\{[^}]*\}", "*", name))
    return names


def documented() -> set[str]:
    lines = (docs_page("watching") + "\n" + docs_page("refreshing")).splitlines()
    names = set()
    for index, line in enumerate(lines):
        if line != "| stat | meaning |":
            continue
        for row in lines[index + 2 :]:
            if not row.startswith("|"):
                break
            cell = row.strip("|").split(" | ")[0]
            items = re.findall(r"`([^`]+)`", cell)
            if not items:
                continue
            parent = items[0].rsplit("/", 1)[0]
            for item in items:
                name = parent + item[1:] if item.startswith("…") else item
                names.add(re.sub(r"<[^>]*>.*$", "", name).rstrip("/"))
    return names


def covered(name: str, docs: set[str]) -> bool:
    plain = name.split("*")[0].rstrip("/")
    return any(
        plain == doc or plain.startswith(doc + "/") or (name != plain and doc.startswith(plain))
        for doc in docs
    )


def test_the_scan_finds_the_stats_it_should() -> None:
    names = counted()
    assert {
        "scheduler/leases/lost",
        "scheduler/start_urls/claimed_elsewhere",
        "scheduler/redis/round_trips",
        "solidot/reparse/responses",
        "solidot/stories",
        "backoff/pauses",
    } <= names
    assert len(names) > 60


def test_every_stat_the_code_counts_is_in_the_readme() -> None:
    docs = documented()
    assert sorted(name for name in counted() if not covered(name, docs)) == []
