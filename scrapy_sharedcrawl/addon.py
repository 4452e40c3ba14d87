"""The add-on that makes a Scrapy project a shared crawl.

``ADDONS = {"scrapy_sharedcrawl.addon.SharedCrawl": 0}``.

An add-on rather than ``if`` lines in settings.py: it sees the final settings, so
``-s REDIS_URL=…`` on the command line works as well as the environment variable, and
settings given explicitly (project or command line) still win over its choices (it sets
them at the ``addon`` priority). Always: old setting names are carried over to the new ones
(:mod:`.legacy`), and the host backoff, cluster rate limit and worker registry are installed
(the last two switch themselves off without Redis). With ``REDIS_URL`` set: the leasing
scheduler, the compact dupefilter, JSON requests, shared stats and bulk start.
"""

from __future__ import annotations

from scrapy.settings import BaseSettings
from scrapy.utils.misc import load_object

from scrapy_sharedcrawl import start
from scrapy_sharedcrawl.config import redis_configured
from scrapy_sharedcrawl.legacy import apply_legacy_names

#: What the add-on sets when REDIS_URL is set.
SHARED_SETTINGS: dict[str, str] = {
    "SCHEDULER": "scrapy_sharedcrawl.scheduler.LeasingScheduler",
    "DUPEFILTER_CLASS": "scrapy_sharedcrawl.dupefilter.CompactRFPDupeFilter",
    "SCHEDULER_SERIALIZER": "scrapy_sharedcrawl.serialization",
    "STATS_CLASS": "scrapy_sharedcrawl.stats.RedisStatsCollector",
}
#: Components installed in any case, with their order (they do nothing where they don't apply).
DOWNLOADER_MIDDLEWARES: dict[str, int] = {
    # before the charset fixes and the like: a paused host takes no turn
    "scrapy_sharedcrawl.backoff.HostBackoffMiddleware": 560,
    # after robots.txt (a forbidden request takes no turn) and the HTTP cache; off without REDIS_URL
    "scrapy_sharedcrawl.cluster_rate.ClusterRateLimitMiddleware": 950,
}
EXTENSIONS: dict[str, int] = {"scrapy_sharedcrawl.workers.WorkerRegistry": 500}


class SharedCrawl:
    """Shared crawl iff ``REDIS_URL``; host politeness and old setting names in any case."""

    def update_settings(self, settings: BaseSettings) -> None:
        apply_legacy_names(settings)
        for name, order in DOWNLOADER_MIDDLEWARES.items():
            settings.setdefault_in_component_priority_dict("DOWNLOADER_MIDDLEWARES", load_object(name), order)
        for name, order in EXTENSIONS.items():
            settings.setdefault_in_component_priority_dict("EXTENSIONS", load_object(name), order)
        if not redis_configured(settings):
            return
        for name, value in SHARED_SETTINGS.items():
            settings.set(name, value, "addon")
        settings.setdefault_in_component_priority_dict(
            "SPIDER_MIDDLEWARES", start.BulkStartMiddleware, start.ORDER
        )
