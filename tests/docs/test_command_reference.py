"""The commands table (docs/running.md) names every option each command takes (issue 25, row 21), read
from the commands' own ``--help``, so an option added without a word in the docs fails here."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from harness import docs_page

ROOT = Path(__file__).resolve().parents[2]
HEADER = "| command | options |"


def reference() -> dict[str, str]:
    """The table's row by command (its first cell without the backticks and arguments in capitals)."""
    lines = docs_page("running").splitlines()
    start = lines.index(HEADER)
    rows = {}
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        command, options = (cell.strip() for cell in line.strip("|").split("|", 1))
        words = [word for word in command.strip("`").split() if not word.isupper() and not word.endswith("…")]
        rows[" ".join(words)] = options
    return rows


def options_of(command: str) -> set[str]:
    """The options ``command --help`` lists (-h/--help left out)."""
    program, *rest = command.split()
    module = {
        "solidot-crawl": "solidot_spider.cli",
        "solidot-replica": "solidot_replica",
        "sharedcrawl": "scrapy_sharedcrawl.cli",
    }[program]
    result = subprocess.run(
        [sys.executable, "-m", module, *rest, "--help"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    found = set()
    for line in result.stdout.partition("\noptions:\n")[2].splitlines():
        if re.match(r"\s{2}-", line):
            found |= set(re.findall(r"(?:(?<=^)|(?<=\s)|(?<=,\s))(--?[a-z][a-z-]*)", line.split("  ", 2)[1]))
    return found - {"-h", "--help"}


ROWS = reference()


def test_the_table_has_a_row_for_every_command() -> None:
    commands = {"seed", "status", "dashboard", "export", "reparse", "workers"}
    assert {f"solidot-crawl {name}" for name in commands} <= set(ROWS)
    assert {f"solidot-crawl workers {action}" for action in ("list", "up", "down", "drain")} <= set(ROWS)
    assert {f"solidot-replica {name}" for name in ("serve", "truth", "info")} <= set(ROWS)
    assert {f"sharedcrawl {name}" for name in ("seed", "status", "workers", "dashboard")} <= set(ROWS)


@pytest.mark.parametrize("command", sorted(ROWS))
def test_every_option_of_a_command_is_in_its_row(command: str) -> None:
    text = ROWS[command]
    if command.startswith("solidot-crawl workers "):
        text += ROWS["solidot-crawl workers"]  # the options every action shares
    if same := re.search(r"as `(solidot-crawl [a-z]+)`", text):  # a framework command, Solidot's twin
        text += ROWS[same[1]]
    if "the replica's options of `serve`" in text:
        text += ROWS["solidot-replica serve"]
    documented = set(re.findall(r"`(--?[a-z][a-z-]*)", text))
    assert sorted(options_of(command) - documented) == []
