"""Helpers and fixtures of the shared-crawl tests: a ``solidot`` spider configured for the shared
scheduler (no crawl running), an opened scheduler, and its queue, on the private redis-server."""

from __future__ import annotations

from typing import Any

import pytest
import redis
import scrapy
from scrapy.crawler import Crawler
from scrapy.utils.test import get_crawler

from scrapy_sharedcrawl.addon import SHARED_SETTINGS
from scrapy_sharedcrawl.keys import QueueKeys
from scrapy_sharedcrawl.queue import LeasedPriorityQueue
from scrapy_sharedcrawl.scheduler import LeasingScheduler
from solidot_spider.spiders.solidot import SolidotSpider

STORIES, LAST_SID = 300, 80300
BASE_URL = "http://www.solidot.test:8080"


def make_spider(redis_url: str, base_url: str = BASE_URL, **settings: Any) -> SolidotSpider:
    """A ``solidot`` spider whose crawler is configured for the shared scheduler (no crawl running)."""
    crawler: Crawler = get_crawler(
        SolidotSpider, {"REDIS_URL": redis_url, "SOLIDOT_BASE_URL": base_url, **SHARED_SETTINGS, **settings}
    )
    spider = SolidotSpider.from_crawler(crawler, latest="0")
    crawler.spider = spider
    return spider


def open_scheduler(spider: scrapy.Spider) -> LeasingScheduler:
    scheduler = LeasingScheduler.from_crawler(spider.crawler)
    scheduler.open(spider)
    return scheduler


def shared_worker(spider_cls: type[scrapy.Spider], redis_url: str, **settings: Any) -> LeasingScheduler:
    """One worker's scheduler for a ``spider_cls`` crawl on ``redis_url``, opened as a crawl opens it."""
    crawler: Crawler = get_crawler(spider_cls, {"REDIS_URL": redis_url, **SHARED_SETTINGS, **settings})
    spider = spider_cls.from_crawler(crawler)
    crawler.spider = spider
    return open_scheduler(spider)


def plant(server: redis.Redis, keys: QueueKeys, member: bytes, host: str = "", priority: int = 0) -> None:
    """Queue ``member`` as a stranger with Redis access would: into ``host``'s list at ``priority``, with
    the host ready and counted, the keys a pop reads."""
    pipe = server.pipeline(transaction=True)
    pipe.rpush(keys.host_queue(priority, host), member)
    pipe.hsetnx(keys.hosts, host, f"0 {priority}")
    pipe.zadd(keys.ready, {host: -priority * 2**32}, nx=True)
    pipe.incr(keys.count)
    pipe.execute()


@pytest.fixture
def spider(redis_url: str) -> SolidotSpider:
    return make_spider(redis_url)


@pytest.fixture
def queue(spider: SolidotSpider) -> LeasedPriorityQueue:
    return open_scheduler(spider).queue
