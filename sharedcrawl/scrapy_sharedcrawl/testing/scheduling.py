"""One worker's scheduler of a shared crawl, opened as a crawl opens it, with no crawl running."""

from __future__ import annotations

from typing import Any

import redis
import scrapy
from scrapy.crawler import Crawler
from scrapy.utils.test import get_crawler

from scrapy_sharedcrawl.addon import SHARED_SETTINGS
from scrapy_sharedcrawl.keys import QueueKeys
from scrapy_sharedcrawl.scheduler import LeasingScheduler


def shared_spider(spider_cls: type[scrapy.Spider], redis_url: str, **settings: Any) -> scrapy.Spider:
    """A ``spider_cls`` spider whose crawler is configured for the shared scheduler on ``redis_url``."""
    crawler: Crawler = get_crawler(spider_cls, {"REDIS_URL": redis_url, **SHARED_SETTINGS, **settings})
    spider = spider_cls.from_crawler(crawler)
    crawler.spider = spider
    return spider


def open_scheduler(spider: scrapy.Spider) -> LeasingScheduler:
    """The spider's crawler's scheduler, opened."""
    scheduler = LeasingScheduler.from_crawler(spider.crawler)
    scheduler.open(spider)
    return scheduler


def shared_worker(spider_cls: type[scrapy.Spider], redis_url: str, **settings: Any) -> LeasingScheduler:
    """One worker's scheduler for a ``spider_cls`` crawl on ``redis_url``, opened as a crawl opens it."""
    return open_scheduler(shared_spider(spider_cls, redis_url, **settings))


def plant(server: redis.Redis, keys: QueueKeys, member: bytes, host: str = "", priority: int = 0) -> None:
    """Queue ``member`` as a stranger with Redis access would: into ``host``'s list at ``priority``, with
    the host ready and counted, the keys a pop reads."""
    pipe = server.pipeline(transaction=True)
    pipe.rpush(keys.host_queue(priority, host), member)
    pipe.hsetnx(keys.hosts, host, f"0 {priority}")
    pipe.zadd(keys.ready, {host: -priority * 2**32}, nx=True)
    pipe.incr(keys.count)
    pipe.execute()
