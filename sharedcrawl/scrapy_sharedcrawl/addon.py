"""The add-on that makes a Scrapy project a shared crawl.

``ADDONS = {"scrapy_sharedcrawl.addon.SharedCrawl": 0}``.

Design notes: docs/framework-design.md#addon.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from scrapy.crawler import Crawler
from scrapy.exceptions import NotConfigured
from scrapy.settings import SETTINGS_PRIORITIES, BaseSettings
from scrapy.utils.misc import load_object

from scrapy_sharedcrawl import item_outbox, outcomes, start
from scrapy_sharedcrawl.config import (
    LEASING_SCHEDULER,
    REDIS_LOCATION_SETTINGS,
    SettingError,
    is_shared_crawl,
    redis_configured,
    redis_settings_given,
)
from scrapy_sharedcrawl.legacy import apply_legacy_names, old_names_of
from scrapy_sharedcrawl.settings_check import check_settings, refuse_start
from scrapy_sharedcrawl.warc.recorder import WARC_SETTINGS

logger = logging.getLogger(__name__)

#: What the add-on sets when a Redis is configured.
SHARED_SETTINGS: dict[str, str] = {
    "SCHEDULER": LEASING_SCHEDULER,
    "DUPEFILTER_CLASS": "scrapy_sharedcrawl.dupefilter.CompactRFPDupeFilter",
    "SCHEDULER_SERIALIZER": "scrapy_sharedcrawl.serialization",
    "STATS_CLASS": "scrapy_sharedcrawl.stats.RedisStatsCollector",
}
#: Components installed in any case, with their order (they do nothing where they don't apply).
DOWNLOADER_MIDDLEWARES: dict[str, int] = {
    # before the charset fixes and the like: a paused host takes no turn
    "scrapy_sharedcrawl.backoff.HostBackoffMiddleware": 560,
    # after robots.txt (a forbidden request takes no turn) and the HTTP cache; off without Redis
    "scrapy_sharedcrawl.cluster_rate.ClusterRateLimitMiddleware": 950,
    # every fetch as the network gave it, just below the HTTP cache; off while WARC_DIR is empty
    "scrapy_sharedcrawl.warc.recorder.WarcRecorder": 890,
    # next to the engine: sees only the exceptions no other middleware retried (.outcomes)
    "scrapy_sharedcrawl.outcomes.UnfetchedRequests": outcomes.DOWNLOADER_ORDER,
}
SPIDER_MIDDLEWARES: dict[str, int] = {
    # next to the engine: every page's outcome, from its final output (.outcomes)
    "scrapy_sharedcrawl.outcomes.PageOutcomes": outcomes.SPIDER_ORDER,
}
EXTENSIONS: dict[str, int] = {
    "scrapy_sharedcrawl.workers.WorkerRegistry": 500,
    "scrapy_sharedcrawl.addon.SharedCrawlCheck": 0,
}
#: Schedulers that share a crawl through Redis without this framework (a project that keeps
#: scrapy-redis's scheduler is shared, not "looking shared").
OTHER_SHARED_SCHEDULERS = ("scrapy_redis.scheduler.Scheduler",)


def settings_from_environment(settings: BaseSettings) -> list[str]:
    """Take each Redis location setting and ``WARC_*`` setting, and the project's old names of them
    (``RENAMED_SETTINGS``, :mod:`.legacy`), from the environment variable of its name, unless it was
    given above the project's priority (``-s``, a spider's ``custom_settings``). → the names taken.

    What the docs promise every project (a scrapyd node's or a systemd unit's environment reaches
    the jobs), not only one whose settings.py reads ``os.environ``. Called before
    :func:`.legacy.apply_legacy_names`, which then carries an old name taken here over to its new one.
    """
    names = (*REDIS_LOCATION_SETTINGS, *WARC_SETTINGS)
    taken = []
    for name in (*names, *old_names_of(settings, names)):
        value = os.environ.get(name, "").strip()
        if value and (settings.getpriority(name) or 0) <= SETTINGS_PRIORITIES["project"]:
            settings.set(name, value, "project")
            taken.append(name)
    return taken


class SharedCrawl:
    """Shared crawl iff a Redis is configured; host politeness and old setting names in any case."""

    def update_settings(self, settings: BaseSettings) -> None:
        """Configure the crawl, then check every framework setting (:mod:`.settings_check`): before
        Scrapy builds stats, extensions, middlewares or the scheduler, a setting that can't work
        (:class:`.config.SettingError`, here or in the check) stops the crawl in one line."""
        try:
            self.configure(settings)
            check_settings(settings)
        except SettingError as error:
            refuse_start(error)

    def configure(self, settings: BaseSettings) -> None:
        """The environment read (old names too), old names carried over, the components installed."""
        settings_from_environment(settings)
        apply_legacy_names(settings)
        for name, order in DOWNLOADER_MIDDLEWARES.items():
            settings.setdefault_in_component_priority_dict("DOWNLOADER_MIDDLEWARES", load_object(name), order)
        for name, order in SPIDER_MIDDLEWARES.items():
            settings.setdefault_in_component_priority_dict("SPIDER_MIDDLEWARES", load_object(name), order)
        for name, order in EXTENSIONS.items():
            settings.setdefault_in_component_priority_dict("EXTENSIONS", load_object(name), order)
        if not redis_configured(settings):
            return
        for name, value in SHARED_SETTINGS.items():
            settings.set(name, value, "addon")
        settings.setdefault_in_component_priority_dict(
            "SPIDER_MIDDLEWARES", start.BulkStartMiddleware, start.ORDER
        )
        swap_redis_pipeline(settings)


def swap_redis_pipeline(settings: BaseSettings) -> bool:
    """scrapy-redis's ``RedisPipeline`` (or a subclass that keeps its ``process_item``), where the
    project uses it, becomes one whose items go into Redis with their request's acknowledgement
    (:func:`.item_outbox.acknowledged_form`); → whether one was swapped. A subclass with its own
    ``process_item`` is left as it is, and said so once."""
    from scrapy_redis.pipelines import RedisPipeline

    swapped = False
    for pipeline_cls in {_loaded(entry) for entry in settings.getdict("ITEM_PIPELINES")}:
        replacement = item_outbox.acknowledged_form(pipeline_cls)
        if replacement is not None:
            settings.replace_in_component_priority_dict("ITEM_PIPELINES", pipeline_cls, replacement)
            swapped = True
        elif (
            isinstance(pipeline_cls, type)
            and issubclass(pipeline_cls, RedisPipeline)
            and not issubclass(pipeline_cls, item_outbox.AcknowledgedRedisPipeline)
        ):
            logger.warning(
                "%s has its own process_item: its items are pushed as it pushes them, not with "
                "their request's acknowledgement (a worker killed mid-request can push one twice)",
                pipeline_cls.__qualname__,
            )
    if swapped:
        # closest to the engine: it notes the very objects the pipelines receive
        settings.setdefault_in_component_priority_dict("SPIDER_MIDDLEWARES", item_outbox.ItemOrigins, 1)
    return swapped


def _loaded(entry: Any) -> Any:
    """A component priority dictionary's key as the object it names (None if it can't be loaded:
    Scrapy's own loading says what is wrong with it)."""
    try:
        return load_object(entry)
    except (ImportError, NameError, ValueError, AttributeError):
        return None


def looks_shared_but_is_not(settings: BaseSettings) -> str | None:
    """Why this crawl, configured for Redis, will run on its own after all (None: it won't).

    A Redis setting given while ``SCHEDULER`` is set above the add-on to a scheduler that shares
    nothing: each worker would silently run a whole crawl of its own.
    """
    given = redis_settings_given(settings)
    if not given or is_shared_crawl(settings):
        return None
    scheduler = settings.get("SCHEDULER")
    try:
        scheduler_class = load_object(scheduler) if isinstance(scheduler, str) else scheduler
        others = [load_object(name) for name in OTHER_SHARED_SCHEDULERS]
    except (ImportError, NameError, ValueError, AttributeError):
        scheduler_class, others = scheduler, []
    if isinstance(scheduler_class, type) and any(issubclass(scheduler_class, other) for other in others):
        return None
    name = getattr(scheduler_class, "__qualname__", None) or str(scheduler)
    module = getattr(scheduler_class, "__module__", "")
    return (
        f"{', '.join(given)} {'is' if len(given) == 1 else 'are'} set, but SCHEDULER is "
        f"{module + '.' if module else ''}{name}: this worker runs a whole crawl of its own instead of "
        f"sharing one through Redis; leave SCHEDULER to the SharedCrawl add-on (it sets {LEASING_SCHEDULER})"
    )


class SharedCrawlCheck:
    """One warning line when a crawl looks shared but is not (:func:`looks_shared_but_is_not`),
    decided on the final settings (after every add-on); then it leaves, as a disabled extension."""

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> SharedCrawlCheck:
        problem = looks_shared_but_is_not(crawler.settings)
        if problem:
            logger.warning(problem)
        raise NotConfigured  # nothing to run: a message here would log a warning of its own
