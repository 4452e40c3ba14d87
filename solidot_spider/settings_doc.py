"""The settings tables of docs/settings.md and docs/refreshing.md, generated from the tables.

Defaults come from the framework's table (:mod:`scrapy_sharedcrawl.defaults`), the project's
(:mod:`solidot_spider.defaults`, which also gives the project's meanings) and what settings.py
changes; the framework settings' meanings on the project's page are kept here. ``python -m
solidot_spider.settings_doc`` prints both tables, ``--write`` puts them into the pages;
tests/test_settings_doc.py fails when a page's table differs from what this prints.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

from scrapy_sharedcrawl.defaults import SETTINGS as FRAMEWORK
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
    Row(
        ("RETRY_AFTER_MAX",),
        meaning="longest Retry-After (s) honoured on 429/503; the whole host pauses that long",
    ),
    Row(
        ("HOST_BACKOFF_BASE",),
        meaning="host pause (s) after a 5xx or connection error; doubles per failure in a row",
    ),
    Row(("HOST_BACKOFF_MAX",), meaning="cap of that pause"),
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
    Row(
        ("WARC_MAX_SIZE",),
        meaning="bytes after which a WARC file is completed and the next begun (100 kB to 10¹² bytes)",
    ),
    Row(
        ("WARC_REVISITS",),
        meaning="a fetch whose payload this worker already stored becomes a `revisit` record",
    ),
    Row(
        ("WARC_COOKIES",),
        meaning=(
            "keep `Cookie` / `Set-Cookie` values in WARC records (masked as `***` by default; "
            "`Authorization` and `Proxy-Authorization` always are)"
        ),
    ),
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
    Row(
        ("REDIS_HOST", "REDIS_PORT"),
        meaning=(
            "scrapy-redis's other way to name the Redis, when `REDIS_URL` is empty (localhost and "
            "6379 for the one left out); either set switches on the shared crawl too"
        ),
    ),
    Row(
        ("REDIS_PARAMS",),
        meaning=(
            'extra redis-py client arguments, as in scrapy-redis (`{"password": …}`); set, it '
            "switches on the shared crawl too. A crawl given any of these four while `SCHEDULER` is "
            "set to one that shares nothing logs one warning line"
        ),
        environment="`REDIS_PARAMS` (JSON)",
    ),
    Row(
        ("REDIS_SENTINELS",),
        meaning=(
            "the Sentinels' `host:port`, comma-separated (port 26379 when left out): Redis through "
            "Sentinel instead of `REDIS_URL`, every client asks them for the master and follows a "
            "failover (see [Redis with "
            "Sentinel](deploying.md#redis-with-sentinel-no-single-point-of-failure)); switches on the "
            "shared crawl too"
        ),
    ),
    Row(
        ("REDIS_SENTINEL_MASTER",),
        meaning=(
            "the name the Sentinels monitor the master by (`sentinel monitor NAME …`); required with "
            "`REDIS_SENTINELS`. The master's own password goes in `REDIS_PARAMS` or in a `REDIS_URL` "
            "whose host is this name (`redis://:PASSWORD@NAME/0`); a `REDIS_URL` naming a server, or "
            "`REDIS_HOST`/`REDIS_PORT`, beside `REDIS_SENTINELS` is refused at start-up"
        ),
    ),
    Row(
        ("REDIS_SENTINEL_PASSWORD",),
        meaning="the Sentinels' own password (their `requirepass`), never logged",
    ),
    Row(("SOLIDOT_DEDUPE_KEY",)),
    Row(("SOLIDOT_DEDUPE_REDIS_TIMEOUT",)),
    Row(("SOLIDOT_DEDUPE_RETRY_MAX",)),
    Row(
        ("SCHEDULER_LEASE_SECONDS",),
        meaning=(
            "how long a worker holds a request; a dead worker's requests return to the queue after it "
            "(renewed every third of it)"
        ),
    ),
    Row(
        ("SCHEDULER_PREFETCH",),
        meaning=(
            "requests a worker leases per round trip to Redis; it hands them to its engine one at a "
            "time (at the end of a crawl another worker may wait while this one works through up to "
            "that many)"
        ),
    ),
    Row(
        ("SCHEDULER_ACK_INTERVAL",),
        meaning="seconds between acknowledgement batches; items are flushed to MongoDB / the feed first",
    ),
    Row(("REDIS_RETRY_MAX",), meaning="longest pause between reconnect tries while Redis is away"),
    Row(
        ("DUPEFILTER_MODE",),
        meaning=(
            "`set`: exact, ≈ 9 bytes per URL at any size (its shards grow with the crawl); `bloom`: ≈ "
            "3.9 bytes per URL of `DUPEFILTER_CAPACITY` (at a 10⁻⁶ error rate), allocated whole at "
            "the start (≈ 7.2 MB at 2M): size the capacity to the crawl"
        ),
    ),
    Row(
        ("DUPEFILTER_CAPACITY",),
        meaning=(
            "bloom mode only: URLs the Bloom filter is sized for (the first worker of a crawl fixes "
            "it); the set mode grows with the crawl"
        ),
    ),
    Row(("DUPEFILTER_ERROR_RATE",), meaning="bloom mode only"),
    Row(
        ("SCHEDULER_PERSIST",),
        meaning=(
            "keep the queue and duplicate filter after the crawl finished (a closing worker never "
            "deletes them)"
        ),
    ),
    Row(
        ("SCHEDULER_FLUSH_ON_START",),
        meaning=(
            "a worker deletes the crawl's queue, duplicate filter and seed marker when it opens, as "
            "in scrapy-redis (give it to one worker, never to a fleet)"
        ),
    ),
    Row(
        ("SCHEDULER_SERIALIZER",),
        meaning=(
            "how requests are written to the queue (JSON, checked on the way in and out; the add-on sets it)"
        ),
    ),
    Row(
        ("DUPEFILTER_DEBUG",),
        meaning="log every filtered duplicate, not just the first (Scrapy's and scrapy-redis's setting)",
    ),
    Row(
        ("SCHEDULER_IDLE_BEFORE_CLOSE",),
        meaning=(
            "seconds a seeded crawl must show nothing queued or leased anywhere before workers close "
            "(atomic check: 0 is safe)"
        ),
    ),
    Row(("SCHEDULER_CONTINUOUS",), meaning="keep workers waiting for the next seed when a crawl is finished"),
    Row(
        ("SCHEDULER_WAIT_FOR_SEED",),
        meaning="seconds a worker started before any seed waits for one, then closes (`no_seed`)",
    ),
    Row(("SCHEDULER_IDLE_POLL_MAX",), meaning="longest pause (s) between an idle worker's polls of Redis"),
    Row(
        ("SCHEDULER_QUEUE_KEY",),
        meaning=(
            "Redis key prefix of the shared queue, its leases and seed marker (the `{…}` hash tag "
            "would keep them on one Redis Cluster slot, but the crawl needs a standalone Redis: Redis "
            "Cluster is not supported)"
        ),
    ),
    Row(("SCHEDULER_DUPEFILTER_KEY",), meaning="Redis key prefix of the duplicate filter's shards"),
    Row(("CLUSTER_HOST_KEY",), meaning="Redis key of a host's shared rate and pause"),
    Row(("CRAWL_KEY_PREFIX",), meaning="Redis key prefix of the shared stats and the worker registry"),
    Row(
        ("CLUSTER_HOST_RATE",),
        default="1 / `DOWNLOAD_DELAY`",
        meaning="requests/s per host for all workers together (0: no limit)",
    ),
    Row(("CLUSTER_CRAWL_DELAY_MAX",), meaning="longest robots.txt Crawl-delay honoured (s)"),
    Row(("STATS_PUSH_INTERVAL",), meaning="seconds between pushes of the shared stats"),
    Row(("STATS_TTL",), meaning="how long the shared stats outlive the crawl", default="7 days"),
    Row(("WORKER_HEARTBEAT",), meaning="seconds between worker heartbeats; a worker is gone after 3 missed"),
    Row(
        ("WORKER_NODE_NAME",),
        meaning=(
            "this machine's name in the fleet, shown by `status` and `workers list` (`workers up` "
            "sets it to the node's deploy target name)"
        ),
        default="the host name",
    ),
    Row(
        ("REDIS_START_URLS_KEY",),
        meaning="Redis list a spider's start URLs can be pushed to, as with scrapy-redis",
    ),
    Row(("REDIS_START_URLS_AS_SET",), meaning="that key is a set (`SADD`) rather than a list"),
    Row(("REDIS_START_URLS_BATCH_SIZE",), meaning="entries taken from that key per read"),
    Row(("REDIS_START_URLS_AS_ZSET",), meaning="that key is a sorted set (`ZADD`), highest score first"),
    Row(("REDIS_ENCODING",), meaning="encoding of that key's entries"),
    Row(("SCHEDULER_SEED_HINT",), meaning="how to seed, named by a worker waiting for a seed"),
    Row(
        ("STATS_SERIES_FIELDS",),
        meaning=(
            "the project's own fields of the crawl's time series, name → stat names (`…/`: every stat "
            "under that prefix); `err_*` fields are error kinds on the dashboard"
        ),
        default="the story failures and drops",
        environment="`STATS_SERIES_FIELDS` (JSON)",
    ),
    Row(
        ("WORKER_BUFFER_STAT",),
        meaning=(
            "the stat of the items a worker's store holds unwritten, shown per worker by `status` and "
            "the dashboard (empty: none)"
        ),
    ),
    Row(
        ("CRAWL_REPORT_CLASS",),
        meaning=(
            "the project's part of `status`, the dashboard and `/metrics` (a "
            "`scrapy_sharedcrawl.report.CrawlReport`, the framework's default: items scraped): "
            "stories counted in MongoDB, `solidot/…error/failed` counters, the likely causes of "
            "alerts"
        ),
    ),
    Row(("ALERT_MIN_PAGES",), meaning="pages received with no item before the `no_items` alert (1–10⁹)"),
    Row(
        ("ALERT_WINDOW",),
        meaning=(
            "the recent window (s) the `drop_share` alert reads (10–86,400; a finished crawl: its last one)"
        ),
    ),
    Row(("ALERT_WINDOW_MIN_PAGES",), meaning="pages that window needs before `drop_share` judges it (1–10⁹)"),
    Row(
        ("ALERT_DROP_SHARE",),
        meaning=(
            "share of the window's pages one drop reason reaches for the `drop_share` alert (over 0, "
            "at most 1)"
        ),
    ),
    Row(
        ("STATS_SERIES_POINTS",),
        meaning=(
            "points of the crawl's time series kept in Redis for the dashboard's charts, one per "
            "stats interval (0: none)"
        ),
    ),
    Row(
        ("DASHBOARD_TOKEN",),
        meaning=(
            "the token `dashboard` (`sharedcrawl` and `solidot-crawl`) asks for; required when it "
            "binds beyond loopback; also read from the environment variable "
            "`SHAREDCRAWL_DASHBOARD_TOKEN` (never an option). The framework's"
        ),
    ),
    Row(("SOLIDOT_DASHBOARD_TOKEN",)),
    Row(
        ("RENAMED_SETTINGS",),
        meaning=(
            "a project's old setting names, old name → new name, carried over with a deprecation "
            "warning ([shared-crawl.md](shared-crawl.md))"
        ),
        default="the 0.1 names",
        environment="—",
    ),
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


def shown(value: Any) -> str:
    """A default as the table shows it: ``*(empty)*``, or the value as code."""
    if value is None or value == "" or value == {} or value == []:
        return "*(empty)*"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value)
    return f"`` {text} ``" if "`" in text else f"`{text}`"


def cells(row: Row, values: Mapping[str, Any]) -> tuple[str, str, str, str]:
    """(setting, environment, default, meaning) of a row."""
    names = tuple(name for name in row.names if not name.endswith("*"))
    default = row.default or " / ".join(shown(values[name]) for name in names) + row.note
    meaning = row.meaning or DECLARED[row.names[0]].meaning
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


def replace_table(text: str, header: str, table: str) -> str:
    """``text`` with the table under ``header`` replaced by ``table``."""
    lines = text.split("\n")
    start = lines.index(header)
    end = start
    while end < len(lines) and lines[end].startswith("|"):
        end += 1
    return "\n".join([*lines[:start], table, *lines[end:]])


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
