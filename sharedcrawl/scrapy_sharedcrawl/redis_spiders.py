"""scrapy-redis's own spiders (``RedisSpider``, ``RedisCrawlSpider``) on the shared crawl, unchanged.

:func:`take_over` disconnects their ``RedisMixin``'s idle handler: the scheduler's start-URLs intake
(:mod:`.start_urls`) reads their ``redis_key`` instead, losing no entry, and :class:`IdleMode` maps
their ``max_idle_time`` onto the scheduler's finite and continuous modes.

Design notes: docs/framework-design.md#redis_spiders.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass

from pydispatch.errors import DispatcherKeyError
from scrapy import Spider, signals
from scrapy.crawler import Crawler

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class IdleMode:
    """How a worker of a scrapy-redis spider waits: forever (continuous), or up to ``wait_for_seed`` s."""

    continuous: bool
    wait_for_seed: float


def is_redis_spider(spider: Spider) -> bool:
    """Whether ``spider`` is one of scrapy-redis's spiders (a ``RedisMixin``)."""
    try:
        from scrapy_redis.spiders import RedisMixin
    except ImportError:  # scrapy-redis is a dependency: a trimmed install simply has no such spider
        return False
    return isinstance(spider, RedisMixin)


def take_over(crawler: Crawler, spider: Spider) -> IdleMode | None:
    """Stop a scrapy-redis spider's own reading of its key (the scheduler reads it) and return how
    its workers wait, from its ``max_idle_time``; None for any other spider."""
    if not is_redis_spider(spider):
        return None
    with contextlib.suppress(DispatcherKeyError):  # not connected: a spider built without from_crawler
        crawler.signals.disconnect(spider.spider_idle, signal=signals.spider_idle)  # type: ignore[attr-defined]
    max_idle = _seconds(getattr(spider, "max_idle_time", 0))
    mode = IdleMode(continuous=max_idle == 0, wait_for_seed=max_idle)
    logger.info(
        "scrapy-redis spider %r: its start URLs are read from %s by the shared scheduler (an entry leaves "
        "the key once its request is queued); %s",
        spider.name,
        getattr(spider, "redis_key", None),
        "it waits for URLs until stopped (max_idle_time 0)"
        if mode.continuous
        else f"it closes when its crawl is finished, or after {max_idle:.0f} s without a seed",
    )
    return mode


def _seconds(value: object) -> float:
    try:
        seconds = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return 0.0
    return seconds if seconds > 0 else 0.0
