"""A ``solidot`` spider configured for the shared scheduler on the private redis-server, no crawl
running (the framework's generic version: ``scrapy_sharedcrawl.testing.scheduling``)."""

from __future__ import annotations

from typing import Any

from scrapy.crawler import Crawler
from scrapy.utils.test import get_crawler

from scrapy_sharedcrawl.addon import SHARED_SETTINGS
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
