"""Switch the crawl to the shared Redis scheduler when ``REDIS_URL`` is set.

An add-on rather than ``if`` lines in settings.py: it sees the final settings,
so ``-s REDIS_URL=…`` on the command line works as well as the environment
variable, and settings given explicitly (project or command line) still win
over its choices (it sets them at the ``addon`` priority).
"""

from __future__ import annotations

from scrapy.settings import BaseSettings

from scrapy_sharedcrawl import start
from scrapy_sharedcrawl.config import redis_configured

#: What the add-on sets when REDIS_URL is set.
SHARED_SETTINGS: dict[str, str] = {
    "SCHEDULER": "scrapy_sharedcrawl.scheduler.LeasingScheduler",
    "DUPEFILTER_CLASS": "scrapy_sharedcrawl.dupefilter.CompactRFPDupeFilter",
    "SCHEDULER_SERIALIZER": "scrapy_sharedcrawl.serialization",
    "STATS_CLASS": "scrapy_sharedcrawl.stats.RedisStatsCollector",
}


class RedisScheduling:
    """``ADDONS = {"scrapy_sharedcrawl.addon.RedisScheduling": 0}``: shared crawl iff REDIS_URL."""

    def update_settings(self, settings: BaseSettings) -> None:
        if not redis_configured(settings):
            return
        for name, value in SHARED_SETTINGS.items():
            settings.set(name, value, "addon")
        settings.setdefault_in_component_priority_dict(
            "SPIDER_MIDDLEWARES", start.BulkStartMiddleware, start.ORDER
        )
