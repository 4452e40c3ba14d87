"""Switch the crawl to the shared Redis scheduler when ``REDIS_URL`` is set.

An add-on rather than ``if`` lines in settings.py: it sees the final settings,
so ``-s REDIS_URL=…`` on the command line works as well as the environment
variable, and settings given explicitly (project or command line) still win
over its choices (it sets them at the ``addon`` priority).
"""

from __future__ import annotations

from scrapy.settings import BaseSettings

from solidot_spider.scheduling import start
from solidot_spider.scheduling.config import redis_configured

#: What the add-on sets when REDIS_URL is set.
SHARED_SETTINGS: dict[str, str] = {
    "SCHEDULER": "solidot_spider.scheduling.scheduler.LeasingScheduler",
    "DUPEFILTER_CLASS": "solidot_spider.scheduling.dupefilter.CompactRFPDupeFilter",
    "SCHEDULER_SERIALIZER": "solidot_spider.scheduling.serialization",
    "STATS_CLASS": "solidot_spider.scheduling.stats.RedisStatsCollector",
}


class RedisScheduling:
    """``ADDONS = {"solidot_spider.scheduling.addon.RedisScheduling": 0}``: shared crawl iff REDIS_URL."""

    def update_settings(self, settings: BaseSettings) -> None:
        if not redis_configured(settings):
            return
        for name, value in SHARED_SETTINGS.items():
            settings.set(name, value, "addon")
        settings.setdefault_in_component_priority_dict(
            "SPIDER_MIDDLEWARES", start.BulkStartMiddleware, start.ORDER
        )
