"""The Solidot archive's part of the operator views: stories counted in MongoDB, the project's
error counters (``solidot/…`` with "error" or "failed" in the name) and the likely causes of
alerts. Named by ``CRAWL_REPORT_CLASS`` in the project's settings."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from scrapy.settings import BaseSettings

from scrapy_sharedcrawl.redact import redact_uri
from scrapy_sharedcrawl.report import CrawlReport
from solidot_spider.pipelines.store import StoreConfig

if TYPE_CHECKING:
    from solidot_spider.cli.export import MongoSource

#: Project counters that are errors: ``solidot/…`` with "error" or "failed" in the name.
SOLIDOT_ERROR = re.compile(r"^solidot/.*(error|failed)")


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

    def __init__(self, settings: BaseSettings, store_uri: str = "") -> None:
        super().__init__(settings, store_uri)
        store = StoreConfig.from_settings(settings)
        self.mongo_database, self.mongo_collection = store.database, store.collection
        self._mongo: MongoSource | None = None  # one client for every read (--watch, the dashboard)

    def mongo(self) -> MongoSource:
        """The store's collection (``store_uri`` must be set), connected on first use."""
        if self._mongo is None:
            from solidot_spider.cli.export import MongoSource

            self._mongo = MongoSource(self.store_uri, self.mongo_database, self.mongo_collection)
        return self._mongo

    def items(self, stats: dict[str, int | float]) -> tuple[int, str]:
        if self.store_uri:
            from pymongo.errors import PyMongoError

            try:
                count = self.mongo().count()
                return int(count or 0), f"stored in MongoDB {self.mongo_database}.{self.mongo_collection}"
            except PyMongoError as error:  # unreachable, refused: fall back to the stats, and say why
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
