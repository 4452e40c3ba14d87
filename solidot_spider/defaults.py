"""Every setting of the Solidot project with its default, declared here and nowhere else.

Like the framework's table (:mod:`scrapy_sharedcrawl.defaults`): components read a setting with
:func:`scrapy_sharedcrawl.config.setting` (or the checked ``float_setting`` / ``int_setting``)
against :data:`SETTINGS`, and ``settings.py`` takes these defaults in one loop, each overridden by
the environment variable of its name (:func:`from_environment`). Pure data: nothing of the project
is imported here, so any module may read it. The settings tables of docs/settings.md and
docs/refreshing.md are generated from it: ``python -m solidot_spider.settings_doc --write``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

HOUR = 3600.0
DAY = 24 * HOUR


class Declared(NamedTuple):
    """One setting: its default, what it means (a markdown cell of docs/settings.md) and whether the
    environment variable of its name sets it."""

    default: Any
    meaning: str
    environment: bool = True


#: The project's settings in the order docs/settings.md lists them.
DECLARED: dict[str, Declared] = {
    # -- the site --------------------------------------------------------------------------------
    "SOLIDOT_BASE_URL": Declared(
        "https://www.solidot.org",
        "the site; category hosts are derived from it (`http://www.solidot.test:8080` → "
        "`http://linux.solidot.test:8080`; `https://solidot.org` → `https://linux.solidot.org`); "
        "http(s) with a dot-separated host name. Requests to any other host are dropped by Scrapy's "
        "offsite middleware (`offsite/filtered`) and refused by the shared queue",
    ),
    # the whole site is ≈ 85.6k sids over ≈ 7.6k days: more is refused at start-up
    "SOLIDOT_MAX_SIDS": Declared(
        200_000, "most story ids `-a sids=` / `seed --sids` may name (overlaps counted once)"
    ),
    "SOLIDOT_MAX_DAYS": Declared(11_000, "most days a `since`/`until` range may name (≈ 30 years)"),
    "SOLIDOT_RESOLVE": Declared(
        "",
        "`DOMAIN=ADDRESS,…`: DOMAIN and every name under it resolve to ADDRESS inside the crawler, "
        "like curl's `--resolve`",
    ),
    "SOLIDOT_OUTPUT": Declared(
        "output/%(name)s.jsonl",
        "JSON Lines file items are appended to when no `-o`/`-O` is given and `MONGO_URI` is empty "
        "(empty: none)",
    ),
    "SOLIDOT_STATS_FILE": Declared("", "write the final stats and finish reason as JSON to this file"),
    "SOLIDOT_CONTACT_URL": Declared(
        "https://github.com/solidot-crawler/solidot-crawler",
        "contact URL in the User-Agent (an http(s) URL; a user name or password in it is left out of "
        "the header)",
    ),
    "SOLIDOT_FORCE_UTF8": Declared(
        True,
        "re-read the site's responses that claim another charset but are valid UTF-8 (counted in "
        "`solidot/charset_corrected`)",
    ),
    "SOLIDOT_TRUNCATED_RETRIES": Declared(3, "extra fetches of a page cut off before `</html>`"),
    "SOLIDOT_JOBDIR_CLEAR_ON_FINISH": Declared(
        True, "clear JOBDIR's resume state when a crawl finishes (kept when interrupted)"
    ),
    "SOLIDOT_MAX_BODY_BYTES": Declared(
        2_000_000,
        "a story whose `body_html` or `body_text` is larger (UTF-8) is dropped (`body_too_large`)",
    ),
    # -- deduplication (its Redis is the shared crawl's REDIS_URL) -------------------------------
    "SOLIDOT_DEDUPE_KEY": Declared("solidot:content_hash", "Redis hash of sid → content hash"),
    "SOLIDOT_DEDUPE_REDIS_TIMEOUT": Declared(
        60.0,
        "seconds per Redis outage that stories wait before passing as new (a double write is "
        "harmless, a loss is not)",
    ),
    "SOLIDOT_DEDUPE_RETRY_MAX": Declared(5.0, "longest pause between Redis retries (s)"),
    # -- the old name of a framework setting, declared so that it can be read from the environment
    "SOLIDOT_DASHBOARD_TOKEN": Declared(
        "",
        "the Solidot project's old name of `DASHBOARD_TOKEN` (its `RENAMED_SETTINGS`): read as it, "
        "with a deprecation warning",
    ),
    # -- the store: MongoDB (off while MONGO_URI is empty: items go to the feed file) ------------
    "MONGO_URI": Declared("", "MongoDB to store stories in; empty: no store, items go to the feed file only"),
    "MONGO_DATABASE": Declared("solidot", "database"),
    "MONGO_COLLECTION": Declared("stories", "collection, one document per `sid`"),
    "MONGO_BATCH_SIZE": Declared(500, "stories per bulk write"),
    "MONGO_FLUSH_INTERVAL": Declared(2.0, "longest wait (s) before a partial batch is written"),
    "MONGO_MAX_BUFFER": Declared(
        50_000,
        "stories held while MongoDB is away (two batches while it answers); then items wait (never dropped)",
    ),
    "MONGO_RETRY_BASE": Declared(0.5, "retry pause (s) while MongoDB is unreachable, doubling, and its cap"),
    "MONGO_RETRY_MAX": Declared(30.0, "retry pause (s) while MongoDB is unreachable, doubling, and its cap"),
    "MONGO_SERVER_SELECTION_TIMEOUT": Declared(5000, "ms pymongo waits for a server before an attempt fails"),
    # -- the refresh policy (solidot_spider.archive.policy; docs/refreshing.md) -------------------
    "SOLIDOT_REFRESH_MIN_INTERVAL": Declared(HOUR, "shortest interval between two fetches of a story (s)"),
    "SOLIDOT_REFRESH_MAX_INTERVAL": Declared(
        90 * DAY, "longest interval (s): every story is looked at again at least this often"
    ),
    "SOLIDOT_REFRESH_AGE_FACTOR": Declared(0.25, "a story's interval is at most its age times this"),
    "SOLIDOT_REFRESH_GROW": Declared(1.5, "interval factor after an unchanged / a changed fetch"),
    "SOLIDOT_REFRESH_SHRINK": Declared(0.5, "interval factor after an unchanged / a changed fetch"),
    "SOLIDOT_REFRESH_MAX_PER_RUN": Declared(
        5000, "most stories and gaps one refresh picks (the most overdue first)"
    ),
    "SOLIDOT_REFRESH_GAP_RETRIES": Declared(
        3,
        "retries of a sid that answered 404, the first this many s later, then doubling up to "
        "`SOLIDOT_REFRESH_MAX_INTERVAL`",
    ),
    "SOLIDOT_REFRESH_GAP_INTERVAL": Declared(
        DAY,
        "retries of a sid that answered 404, the first this many s later, then doubling up to "
        "`SOLIDOT_REFRESH_MAX_INTERVAL`",
    ),
    "SOLIDOT_REFRESH_CLAIM": Declared(
        6 * HOUR, "s a picked story waits for its fetch before a later refresh may pick it again"
    ),
    "SOLIDOT_REFRESH_NOW": Declared(
        "", "the time the policy takes as now (ISO 8601; empty: the clock), for tests and replays"
    ),
}

#: Every project setting with its default: ``setting(settings, name, SETTINGS)`` reads one.
SETTINGS: dict[str, Any] = {name: declared.default for name, declared in DECLARED.items()}

#: Environment variables that are no setting of their own → the setting each sets.
ENVIRONMENT_ONLY: dict[str, str] = {"SOLIDOT_LOG_LEVEL": "LOG_LEVEL"}


def from_environment(names: Iterable[str], environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Name → value of each of ``names`` given in the environment, stripped; a blank one is left out
    (it means "the default"). The one place the project's settings are read from the environment."""
    environ = os.environ if environ is None else environ
    found = {name: environ.get(name, "").strip() for name in names}
    return {name: value for name, value in found.items() if value}


def environment_value(name: str, default: Any) -> Any:
    """The environment variable ``name`` (stripped), or ``default`` when it is unset or blank."""
    return from_environment([name]).get(name, default)
