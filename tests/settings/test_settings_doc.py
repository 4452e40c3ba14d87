"""One way to declare a project setting (issue 20): the defaults table, settings.py, the generated docs.

The settings tables of docs/settings.md and docs/refreshing.md must be what ``python -m
solidot_spider.settings_doc`` generates from the framework's and the project's tables (run it with
``--write`` after changing a setting); settings.py must declare none of the project's settings
itself; the environment helper must treat a blank variable as "the default".
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

from test_settings_table import PREFIXES

from scrapy_sharedcrawl.defaults import SETTINGS as FRAMEWORK
from solidot_spider import defaults, settings_doc
from solidot_spider.archive.policy import DEFAULTS as REFRESH
from solidot_spider.legacy import RENAMED

ROOT = Path(__file__).resolve().parents[2]


def page_table(page: str, header: str) -> str:
    lines = (ROOT / "docs" / page).read_text(encoding="utf-8").splitlines()
    start = lines.index(header)
    end = start
    while end < len(lines) and lines[end].startswith("|"):
        end += 1
    return "\n".join(lines[start:end])


def test_the_docs_tables_are_the_generated_ones() -> None:
    environment = {key: value for key, value in os.environ.items() if not key.startswith(PREFIXES)}
    # a variable the generator must ignore: the tables show defaults, never this machine's environment
    environment |= {"MONGO_BATCH_SIZE": "7", "REDIS_URL": "redis://elsewhere", "SOLIDOT_LOG_LEVEL": "DEBUG"}
    result = subprocess.run(
        [sys.executable, "-m", "solidot_spider.settings_doc"],
        env=environment,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    generated = result.stdout.strip().split("\n\n")
    on_pages = [
        page_table("settings.md", settings_doc.SETTINGS_HEADER),
        page_table("refreshing.md", settings_doc.REFRESH_HEADER),
    ]
    assert generated == on_pages, "run `python -m solidot_spider.settings_doc --write`"


def test_every_setting_has_one_row_in_the_generated_tables() -> None:
    rows = [row.names for row in (*settings_doc.SETTINGS_ROWS, *settings_doc.REFRESH_ROWS)]
    listed = [name for names in rows for name in names]
    assert sorted((set(FRAMEWORK) | set(defaults.SETTINGS)) - set(listed)) == []
    documented = [name for row in settings_doc.SETTINGS_ROWS for name in row.names]
    assert len(documented) == len(set(documented)), "a setting listed twice"


def test_settings_py_declares_no_project_setting_itself() -> None:
    """The project's defaults are taken from defaults.py, never assigned again in settings.py."""
    tree = ast.parse((ROOT / "solidot_spider" / "settings.py").read_text(encoding="utf-8"))
    assigned = {
        target.id
        for node in tree.body
        if isinstance(node, ast.Assign | ast.AnnAssign)
        for target in (node.targets if isinstance(node, ast.Assign) else [node.target])
        if isinstance(target, ast.Name)
    }
    assert assigned & set(defaults.SETTINGS) == set()
    # the framework's settings it sets are the ones whose default the project changes
    assert assigned & set(FRAMEWORK) == {
        "SCHEDULER_SEED_HINT",
        "WORKER_BUFFER_STAT",
        "STATS_SERIES_FIELDS",
        "CRAWL_REPORT_CLASS",
        "RENAMED_SETTINGS",
        "WARC_PREFIX",
    }


def test_the_refresh_policy_and_the_store_read_the_declared_defaults() -> None:
    from solidot_spider.archive import mongo as store  # the store's settings (StoreConfig) are read there
    from solidot_spider.crawl.pipelines import clean, dedupe
    from solidot_spider.site import discovery

    assert {k: v for k, v in defaults.SETTINGS.items() if k.startswith("SOLIDOT_REFRESH_")} == REFRESH
    assert store.SETTINGS is defaults.SETTINGS
    assert discovery.DEFAULT_MAX_SIDS == defaults.SETTINGS["SOLIDOT_MAX_SIDS"] == 200_000
    assert defaults.SETTINGS["SOLIDOT_DEDUPE_KEY"] == dedupe.DEFAULT_KEY
    assert defaults.SETTINGS["SOLIDOT_MAX_BODY_BYTES"] == clean.DEFAULT_MAX_BODY_BYTES
    # old names the project still reads are no settings of its own, except the one it declares
    assert set(RENAMED) & set(defaults.SETTINGS) == {"SOLIDOT_DASHBOARD_TOKEN"}


def test_the_environment_helper_strips_and_skips_blank_values() -> None:
    environ = {"A": "  x ", "B": "   ", "C": "", "D": "0"}
    assert defaults.from_environment(["A", "B", "C", "D", "E"], environ) == {"A": "x", "D": "0"}
