"""The settings tables of docs/settings.md and docs/refreshing.md, generated from the tables.

Defaults come from the framework's table (:mod:`scrapy_sharedcrawl.defaults`), the project's
(:mod:`solidot_spider.defaults`) and what settings.py changes; meanings from the project's table for
its settings and the framework's ``DESCRIPTIONS`` for the framework's, unless a row here says more
for this project. ``python -m
solidot_spider.settings_doc`` prints both tables, ``--write`` puts them into the pages;
tests/settings/test_settings_doc.py fails when a page's table differs from what this prints.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

from scrapy_sharedcrawl.defaults import DEFAULTS_IN_WORDS, DESCRIPTIONS
from scrapy_sharedcrawl.defaults import SETTINGS as FRAMEWORK
from scrapy_sharedcrawl.settings_doc import replace_table, shown
from solidot_spider.defaults import DECLARED, ENVIRONMENT_ONLY
from solidot_spider.legacy import RENAMED

DOCS = Path(__file__).resolve().parents[1] / "docs"
SETTINGS_HEADER = "| setting | environment | default | meaning |"
REFRESH_HEADER = "| setting | default | meaning |"


class Row(NamedTuple):
    """One row: its settings (several share a row when they share a meaning), and what the cells
    say where the tables don't (a default in words, the environment column, the meaning of a
    framework setting)."""

    names: tuple[str, ...]
    meaning: str = ""
    default: str = ""
    environment: str = ""
    setting: str = ""
    note: str = ""


#: docs/settings.md's table, in its order; a row without a meaning takes the project's declared one.
SETTINGS_ROWS: tuple[Row, ...] = (
    Row(("SOLIDOT_BASE_URL",)),
    Row(("SOLIDOT_MAX_SIDS",)),
    Row(("SOLIDOT_MAX_DAYS",)),
    Row(("SOLIDOT_RESOLVE",)),
    Row(("SOLIDOT_OUTPUT",)),
    Row(("SOLIDOT_STATS_FILE",)),
    Row(("SOLIDOT_CONTACT_URL",), default="the project's URL"),
    Row(
        ("LOG_LEVEL",),
        setting="—",
        environment="`SOLIDOT_LOG_LEVEL`",
        meaning="sets `LOG_LEVEL` (environment only: use `-s LOG_LEVEL=…` on the command line)",
    ),
    Row(("SOLIDOT_FORCE_UTF8",)),
    Row(("SOLIDOT_TRUNCATED_RETRIES",)),
    Row(("RETRY_AFTER_MAX",)),
    Row(("HOST_BACKOFF_BASE",)),
    Row(("HOST_BACKOFF_MAX",)),
    Row(("SOLIDOT_JOBDIR_CLEAR_ON_FINISH",)),
    Row(("SOLIDOT_MAX_BODY_BYTES",)),
    Row(
        ("WARC_DIR",),
        meaning=(
            "directory of the WARC files of every fetch (one set per worker process); empty: no WARC. "
            "The framework's, for any project (old name, still read: `SOLIDOT_WARC_DIR`)"
        ),
    ),
    Row(
        ("WARC_PREFIX",),
        meaning=(
            "WARC file names: `PREFIX-STARTED-SERIAL-PID~HOST.warc.gz`; letters, digits, `_`, `.`, "
            "`-` (the framework's default: the project's `BOT_NAME`)"
        ),
    ),
    Row(("WARC_MAX_SIZE",)),
    Row(("WARC_REVISITS",)),
    Row(("WARC_COOKIES",)),
    Row(
        ("SOLIDOT_REFRESH_*",),
        meaning=(
            "the refresh policy: shortest and longest interval, age factor, grow/shrink, most stories "
            "a run, gap retries, claim time, a fixed clock"
        ),
        default="see [Keeping the archive current](refreshing.md)",
    ),
    Row(
        ("REDIS_URL",),
        meaning=(
            "shared Redis: switches on the shared crawl (scheduler, duplicate filter, stats, host "
            "rate); dedupe keeps content hashes there"
        ),
    ),
    Row(("REDIS_HOST", "REDIS_PORT")),
    Row(
        ("REDIS_PARAMS",),
        meaning=(
            'extra redis-py client arguments, as in scrapy-redis (`{"password": …}`); set, it '
            "switches on the shared crawl too. A crawl given any of these four while `SCHEDULER` is "
            "set to one that shares nothing logs one warning line"
        ),
        environment="`REDIS_PARAMS` (JSON)",
    ),
    Row(("REDIS_SENTINELS",)),
    Row(("REDIS_SENTINEL_MASTER",)),
    Row(("REDIS_SENTINEL_PASSWORD",)),
    Row(("SOLIDOT_DEDUPE_KEY",)),
    Row(("SOLIDOT_DEDUPE_REDIS_TIMEOUT",)),
    Row(("SOLIDOT_DEDUPE_RETRY_MAX",)),
    Row(("SCHEDULER_LEASE_SECONDS",)),
    Row(("SCHEDULER_PREFETCH",)),
    Row(("SCHEDULER_HOST_HORIZON",)),
    Row(
        ("SCHEDULER_ACK_INTERVAL",),
        meaning="seconds between acknowledgement batches; items are flushed to MongoDB / the feed first",
    ),
    Row(("REDIS_RETRY_MAX",)),
    Row(("DUPEFILTER_MODE",)),
    Row(("DUPEFILTER_CAPACITY",)),
    Row(("DUPEFILTER_ERROR_RATE",)),
    Row(("SCHEDULER_PERSIST",)),
    Row(("SCHEDULER_FLUSH_ON_START",)),
    Row(("SCHEDULER_SERIALIZER",)),
    Row(("DUPEFILTER_DEBUG",)),
    Row(("SCHEDULER_IDLE_BEFORE_CLOSE",)),
    Row(("SCHEDULER_CONTINUOUS",)),
    Row(("SCHEDULER_WAIT_FOR_SEED",)),
    Row(("SCHEDULER_IDLE_POLL_MAX",)),
    Row(("SCHEDULER_QUEUE_KEY",)),
    Row(("SCHEDULER_DUPEFILTER_KEY",)),
    Row(("CLUSTER_HOST_KEY",)),
    Row(("CRAWL_KEY_PREFIX",)),
    Row(("CLUSTER_HOST_RATE",)),
    Row(("CLUSTER_CRAWL_DELAY_MAX",)),
    Row(("STATS_PUSH_INTERVAL",)),
    Row(("STATS_TTL",)),
    Row(("WORKER_HEARTBEAT",)),
    Row(("WORKER_NODE_NAME",)),
    Row(("REDIS_START_URLS_KEY",)),
    Row(("REDIS_START_URLS_AS_SET",)),
    Row(("REDIS_START_URLS_BATCH_SIZE",)),
    Row(("REDIS_START_URLS_AS_ZSET",)),
    Row(("REDIS_ENCODING",)),
    Row(("SCHEDULER_SEED_HINT",)),
    Row(
        ("STATS_SERIES_FIELDS",),
        meaning=(
            "the project's own fields of the crawl's time series, name → stat names (`…/`: every stat "
            "under that prefix); `err_*` fields are error kinds on the dashboard"
        ),
        default="the story failures and drops",
        environment="`STATS_SERIES_FIELDS` (JSON)",
    ),
    Row(("WORKER_BUFFER_STAT",)),
    Row(
        ("CRAWL_REPORT_CLASS",),
        meaning=(
            "the project's part of `status`, the dashboard and `/metrics` (a "
            "`scrapy_sharedcrawl.report.CrawlReport`, the framework's default: items scraped): "
            "stories counted in MongoDB, `solidot/…error/failed` counters, the likely causes of "
            "alerts"
        ),
    ),
    Row(("ALERT_MIN_PAGES",)),
    Row(("ALERT_WINDOW",)),
    Row(("ALERT_WINDOW_MIN_PAGES",)),
    Row(("ALERT_DROP_SHARE",)),
    Row(("STATS_SERIES_POINTS",)),
    Row(
        ("DASHBOARD_TOKEN",),
        meaning=(
            "the token `dashboard` (`sharedcrawl` and `solidot-crawl`) asks for; required when it "
            "binds beyond loopback; also read from the environment variable "
            "`SHAREDCRAWL_DASHBOARD_TOKEN` (never an option). The framework's"
        ),
    ),
    Row(("SOLIDOT_DASHBOARD_TOKEN",)),
    Row(("RENAMED_SETTINGS",), default="the 0.1 names", environment="—"),
    Row(("MONGO_URI",)),
    Row(("MONGO_DATABASE",)),
    Row(("MONGO_COLLECTION",)),
    Row(("MONGO_BATCH_SIZE",)),
    Row(("MONGO_FLUSH_INTERVAL",)),
    Row(("MONGO_MAX_BUFFER",)),
    Row(("MONGO_RETRY_BASE", "MONGO_RETRY_MAX")),
    Row(("MONGO_SERVER_SELECTION_TIMEOUT",)),
)

#: docs/refreshing.md's table of the refresh policy.
REFRESH_ROWS: tuple[Row, ...] = (
    Row(("SOLIDOT_REFRESH_MIN_INTERVAL",)),
    Row(("SOLIDOT_REFRESH_MAX_INTERVAL",), note=" (90 days)"),
    Row(("SOLIDOT_REFRESH_AGE_FACTOR",)),
    Row(("SOLIDOT_REFRESH_GROW", "SOLIDOT_REFRESH_SHRINK")),
    Row(("SOLIDOT_REFRESH_MAX_PER_RUN",)),
    Row(("SOLIDOT_REFRESH_GAP_RETRIES", "SOLIDOT_REFRESH_GAP_INTERVAL")),
    Row(("SOLIDOT_REFRESH_CLAIM",)),
    Row(("SOLIDOT_REFRESH_NOW",)),
)


def code(names: tuple[str, ...]) -> str:
    return " / ".join(f"`{name}`" for name in names)


def cells(row: Row, values: Mapping[str, Any]) -> tuple[str, str, str, str]:
    """(setting, environment, default, meaning) of a row."""
    names = tuple(name for name in row.names if not name.endswith("*"))
    default = row.default or DEFAULTS_IN_WORDS.get(row.names[0], "")
    default = default or " / ".join(shown(values[name]) for name in names) + row.note
    # the project's own settings mean what its table declares, the framework's what the framework says
    first = row.names[0]
    meaning = row.meaning or (DECLARED[first].meaning if first in DECLARED else DESCRIPTIONS[first])
    return (row.setting or code(row.names), row.environment or code(row.names), default, meaning)


def settings_table(values: Mapping[str, Any]) -> str:
    lines = [SETTINGS_HEADER, "|---|---|---|---|"]
    lines += ["| " + " | ".join(cells(row, values)) + " |" for row in SETTINGS_ROWS]
    return "\n".join(lines)


def refresh_table(values: Mapping[str, Any]) -> str:
    lines = [REFRESH_HEADER, "|---|---|---|"]
    for row in REFRESH_ROWS:
        setting, _, default, meaning = cells(row, values)
        lines.append(f"| {setting} | {default} | {meaning} |")
    return "\n".join(lines)


def defaults_as_run() -> dict[str, Any]:
    """Every documented setting's value as settings.py gives it with nothing in the environment
    (the variables it reads are removed from this process's environment first)."""
    for name in (*DECLARED, *ENVIRONMENT_ONLY, *FRAMEWORK, *RENAMED):
        os.environ.pop(name, None)
    module = importlib.reload(importlib.import_module("solidot_spider.settings"))
    names = {name for row in (*SETTINGS_ROWS, *REFRESH_ROWS) for name in row.names}
    return {name: getattr(module, name, FRAMEWORK.get(name)) for name in names if not name.endswith("*")}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--write", action="store_true", help="put the tables into the docs pages")
    args = parser.parse_args(argv)
    values = defaults_as_run()
    tables = {"settings.md": (SETTINGS_HEADER, settings_table(values))}
    tables["refreshing.md"] = (REFRESH_HEADER, refresh_table(values))
    if not args.write:
        sys.stdout.write("\n\n".join(table for _, table in tables.values()) + "\n")
        return 0
    for page, (header, table) in tables.items():
        path = DOCS / page
        path.write_text(replace_table(path.read_text(encoding="utf-8"), header, table), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
