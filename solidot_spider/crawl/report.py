"""The Solidot archive's part of the operator views: stories counted in MongoDB, the project's
error counters (``solidot/…`` with "error" or "failed" in the name), the likely causes of
alerts, and the archive panel with its ``solidot_archive_*`` metrics (:meth:`ArchiveReport.view`:
the stories, what this crawl did to them, the latest stored, drops by reason). Named by
``CRAWL_REPORT_CLASS`` in the project's settings."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from scrapy.settings import BaseSettings

from scrapy_sharedcrawl.redact import redact_uri
from scrapy_sharedcrawl.report import (
    CrawlReport,
    Figure,
    Link,
    Number,
    Panel,
    ProjectMetric,
    ProjectView,
    Table,
)
from solidot_spider.archive.export import MongoSource
from solidot_spider.archive.mongo import StoreConfig, StoreError

#: Project counters that are errors: ``solidot/…`` with "error" or "failed" in the name.
SOLIDOT_ERROR = re.compile(r"^solidot/.*(error|failed)")
#: Drops: ``solidot/dropped/<reason>`` (a page without an item), ``solidot/<stage>/dropped/<reason>``.
_DROP = re.compile(r"^solidot/(?:([a-z_]+)/)?dropped/(.+)$")
#: Stories listed as the latest stored.
LATEST = 8
#: What the dedupe stage counts, per story of this crawl (``solidot/dedupe/<outcome>``).
DEDUPE_OUTCOMES = ("new", "changed", "unchanged", "duplicate")


#: What most pages of a crawl without items came to → its likely cause (``no_items`` alert).
NO_ITEMS_CAUSES = {
    "story_gap": "every story page answered 404: is the sid range inside the site's?",
    "story_missing": "listed stories answered 404: has the site moved its story pages?",
    "story_unchanged": "every story was unchanged since it was stored: nothing new to store",
    "list_page": "list pages listed no story this crawl fetched",
    "retried/truncated_html": "story pages arrive cut short: is the site (or a proxy) truncating them?",
}


class ArchiveReport(CrawlReport):
    """Items are stories stored in MongoDB (when the command was given a MongoDB), else scraped."""

    metric_prefix = "solidot_archive_"

    def __init__(self, settings: BaseSettings, store_uri: str = "") -> None:
        super().__init__(settings, store_uri)
        store = StoreConfig.from_settings(settings)
        self.mongo_database, self.mongo_collection = store.database, store.collection
        self._mongo: MongoSource | None = None  # one client for every read (--watch, the dashboard)

    def mongo(self) -> MongoSource:
        """The store's collection (``store_uri`` must be set), connected on first use."""
        if self._mongo is None:
            self._mongo = MongoSource(self.store_uri, self.mongo_database, self.mongo_collection)
        return self._mongo

    def items(self, stats: dict[str, int | float]) -> tuple[int, str]:
        if self.store_uri:
            try:
                count = self.mongo().count()
                return int(count or 0), f"stored in MongoDB {self.mongo_database}.{self.mongo_collection}"
            except StoreError as error:  # unreachable, refused: fall back to the stats, and say why
                where = redact_uri(self.store_uri)
                return int(stats.get("item_scraped_count", 0)), f"scraped; MongoDB at {where}: {error}"
        return super().items(stats)

    def is_error(self, stat: str) -> bool:
        return bool(SOLIDOT_ERROR.match(stat))

    def alert_cause(self, rule: str, subject: str) -> str:
        if rule == "drop_share":
            return "has the markup changed?"
        if rule == "no_items":
            if cause := NO_ITEMS_CAUSES.get(subject):
                return cause
            if subject.startswith("dropped/"):
                return "story pages came without stories: has the markup changed?"
        return super().alert_cause(rule, subject)

    def view(self, stats: dict[str, Number], crawl: dict[str, Any]) -> ProjectView:
        """The archive panel: stories in MongoDB, this crawl's new/changed/unchanged, the latest stored
        and drops by reason; the same as ``solidot_archive_*`` metrics. The panel is shown when the
        archive is read (a MongoDB given) or when items were dropped; the metrics always."""
        stored = crawl.get("items_source", "").startswith("stored")
        stories = crawl.get("items") if stored else None
        this_crawl = {outcome: int(stats.get(f"solidot/dedupe/{outcome}", 0)) for outcome in DEDUPE_OUTCOMES}
        drops = drops_by_reason(stats)
        latest, warning = self.latest()
        panel = Panel(
            title="archive",
            figures=[
                Figure("stories", "stories in MongoDB", stories),
                *(Figure(name, name, this_crawl[name]) for name in ("new", "changed", "unchanged")),
            ],
            tables=[Table("drops", "drops", drops)],
            links_title="latest stored",
            links=latest,
            warning=warning,
        )
        metrics = [
            ProjectMetric(
                "solidot_archive_crawl_stories", "stories this crawl, by outcome", this_crawl, "outcome", True
            ),
            ProjectMetric(
                "solidot_archive_dropped", "items and pages dropped, by reason", drops, "reason", True
            ),
        ]
        if stories is not None:
            metrics.append(
                ProjectMetric("solidot_archive_stories", "stories in the MongoDB collection", {"": stories})
            )
        return ProjectView(panel if self.store_uri or drops else None, metrics)

    def latest(self) -> tuple[list[Link], str]:
        """The latest stored stories (newest first: the ``_id`` index), and why none could be read."""
        if not self.store_uri:
            return [], ""
        fields = {"_id": 0, "sid": 1, "title": 1, "url": 1, "published_at": 1}
        try:
            found = self.mongo().collection.find({}, fields, sort=[("_id", -1)], limit=LATEST)
            rows = latest_stories(found)
        except StoreError as error:
            return [], f"MongoDB at {redact_uri(self.store_uri)}: {type(error).__name__}"
        return [
            Link(
                row["title"] or f"story {row['sid']}",
                row["url"],
                f"sid {row['sid']}"
                + (f" · {row['published_at'][:16].replace('T', ' ')}" if row["published_at"] else ""),
            )
            for row in rows
        ], ""


def drops_by_reason(stats: dict[str, Number]) -> dict[str, int]:
    """``page/<reason>`` (a page that yielded no item) and ``<stage>/<reason>`` (a pipeline's)."""
    drops = {}
    for name, value in stats.items():
        if found := _DROP.match(name):
            drops[f"{found[1] or 'page'}/{found[2]}"] = int(value)
    return drops


def latest_stories(documents: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Stored stories as the page lists them; a field of the wrong type is left out, a URL that is not
    http(s) too (a link must never run script)."""
    rows = []
    for document in documents:
        sid, title, url = document.get("sid"), document.get("title"), document.get("url")
        if not isinstance(sid, int) or isinstance(sid, bool):
            continue
        published = document.get("published_at")
        rows.append(
            {
                "sid": sid,
                "title": title[:300] if isinstance(title, str) else "",
                "url": url if isinstance(url, str) and re.match(r"^https?://", url) else None,
                "published_at": published if isinstance(published, str) else None,
            }
        )
    return rows
