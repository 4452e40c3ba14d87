"""The settings tables (docs/settings.md, and the refresh policy's in docs/refreshing.md) against the code (issue 25, row 15): every row names a setting that
exists with the documented default, every setting of the framework and of the project has a row,
and every name in the environment column is read from the environment.

The defaults are read in a child process with no SOLIDOT_/REDIS_/MONGO_/SCHEDULER_… variables, so
the environment this test runs in can't change them.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from harness import docs_page

from scrapy_sharedcrawl.defaults import SETTINGS as FRAMEWORK
from solidot_spider.archive.policy import DEFAULTS as REFRESH
from solidot_spider.defaults import SETTINGS as PROJECT
from solidot_spider.legacy import RENAMED

ROOT = Path(__file__).resolve().parents[2]

#: Defaults the table describes in words, with what each means in the code.
DESCRIBED: dict[str, Any] = {
    "the project's URL": "https://github.com/solidot-crawler/solidot-crawler",
    "1 / `DOWNLOAD_DELAY`": None,
    "7 days": 7 * 24 * 3600,
    "the host name": "",
    "the 0.1 names": RENAMED,
    "the story failures and drops": {
        "err_failed": ["solidot/story_failed/"],
        "dropped": ["solidot/dropped/", "solidot/validate/dropped/"],
    },
}

#: Environment variables that are no setting of their own (the table's setting column: —), and the
#: setting each sets.
ENVIRONMENT_ONLY = {"SOLIDOT_LOG_LEVEL": "LOG_LEVEL"}

#: The project's settings as `scrapy crawl` sees them before any -s: the settings module, then the
#: framework's declared defaults for what the module leaves out. JSON on stdout.
DUMP = """
import json, sys
from scrapy.settings import Settings
from scrapy_sharedcrawl.defaults import SETTINGS
settings = Settings()
settings.setmodule("solidot_spider.settings", priority="project")
out = {}
for name in json.loads(sys.argv[1]):
    value = settings.get(name)
    if value is None and name in SETTINGS:
        value = SETTINGS[name]
    if hasattr(value, "copy_to_dict"):
        value = value.copy_to_dict()
    out[name] = value
print(json.dumps(out, default=str))
"""

PREFIXES = ("SOLIDOT_", "REDIS_", "MONGO_", "SCHEDULER_", "DUPEFILTER_", "STATS_", "WORKER_", "CLUSTER_")


def cells(line: str) -> list[str]:
    return [cell.strip() for cell in re.split(r"(?<!\\)\|", line.strip().strip("|"))]


def table(page: str, header: str) -> list[list[str]]:
    """The rows of the table of docs page ``page`` whose header line is ``header``."""
    lines = docs_page(page).splitlines()
    start = lines.index(header)
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append(cells(line))
    return rows


def names(cell: str) -> list[str]:
    return re.findall(r"`([A-Z][A-Z0-9_]*\*?)`", cell)


def documented_defaults(cell: str, count: int) -> list[str]:
    """``x`` / ``y`` → ['x', 'y']; a default in words stays whole."""
    if count == 1:
        return [cell]
    parts = [part.strip() for part in cell.split(" / ")]
    assert len(parts) == count, cell
    return parts


def rows() -> list[tuple[list[str], list[str], str]]:
    """(setting names, environment names, default cell) of both tables."""
    found = []
    for setting, environment, default, _ in table(
        "settings", "| setting | environment | default | meaning |"
    ):
        if setting == "—":  # an environment variable only, setting another setting
            [name] = names(environment)
            found.append(([ENVIRONMENT_ONLY[name]], [name], default))
            continue
        found.append((names(setting), names(environment), default))
    for setting, default, _ in table("refreshing", "| setting | default | meaning |"):
        found.append((names(setting), names(setting), default))
    return found


def clean_environment() -> dict[str, str]:
    return {key: value for key, value in os.environ.items() if not key.startswith(PREFIXES)}


def actual(all_names: list[str], environment: dict[str, str] | None = None) -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, "-c", DUMP, json.dumps(all_names)],
        env=clean_environment() | (environment or {}),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def matches(documented: str, value: Any) -> bool:
    if documented == "*(empty)*":
        return value in ("", None) or value == {} or value == []
    if documented in DESCRIBED:
        return DESCRIBED[documented] == value or (DESCRIBED[documented] is None and value in (None, ""))
    if documented.startswith("`` ") and documented.endswith(" ``"):
        text = documented[3:-3]  # code that holds backticks
    else:
        code = re.match(r"`([^`]*)`", documented)
        assert code, f"a default that is neither `code` nor described in DESCRIBED: {documented!r}"
        text = code[1]
    if isinstance(value, bool):
        return text == str(value)
    if isinstance(value, int | float):
        try:
            return float(text) == float(value)
        except ValueError:
            return False
    return text == str(value)


@pytest.fixture(scope="module")
def documented() -> list[tuple[list[str], list[str], str]]:
    return rows()


def test_every_row_names_a_setting_with_its_documented_default(documented) -> None:
    wanted = [name for setting, _, _ in documented for name in setting if not name.endswith("*")]
    values = actual(wanted)
    wrong = {}
    for setting, _, default in documented:
        plain = [name for name in setting if not name.endswith("*")]
        if not plain:
            continue
        for name, expected in zip(plain, documented_defaults(default, len(plain)), strict=True):
            if name not in FRAMEWORK and name not in REFRESH and values[name] is None:
                wrong[name] = "no such setting"
            elif not matches(expected, values[name]):
                wrong[name] = f"documented {expected}, is {values[name]!r}"
    assert wrong == {}


def test_every_setting_of_the_framework_and_the_project_has_a_row(documented) -> None:
    import solidot_spider.settings as project

    listed = {name for setting, _, _ in documented for name in setting}
    declared = (
        set(FRAMEWORK)
        | set(REFRESH)
        | set(PROJECT)
        | {name for name in dir(project) if name.startswith(("SOLIDOT_", "MONGO_"))}
    )
    assert sorted(declared - listed) == []


def test_every_name_in_the_environment_column_is_read_from_the_environment(documented) -> None:
    probes = {}
    for _, environment, _ in documented:
        for name in environment:
            if name.endswith("*"):
                continue
            probes[name] = (
                "https://probe.example/" if name == "SOLIDOT_CONTACT_URL" else f"probe-{name.lower()}"
            )
    targets = {ENVIRONMENT_ONLY.get(name, name): value for name, value in probes.items()}
    values = actual(sorted(targets), probes)
    assert {name: values[name] for name in targets} == targets
