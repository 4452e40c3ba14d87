"""The framework's own tests: a private Redis (the framework's pytest plugin) and a generic spider of
the shared crawl with its leased queue. Nothing here imports a project built on the framework."""

from __future__ import annotations

from typing import Any

import pytest
from news_spider import NewsSpider

from scrapy_sharedcrawl.queue import LeasedPriorityQueue
from scrapy_sharedcrawl.testing.scheduling import open_scheduler, shared_spider

#: fixtures redis_srv / redis_url (a private Redis)
pytest_plugins = ("scrapy_sharedcrawl.testing.fixtures",)


def make_spider(redis_url: str, **settings: Any) -> NewsSpider:
    """A ``news`` spider whose crawler is configured for the shared scheduler (no crawl running)."""
    spider = shared_spider(NewsSpider, redis_url, **settings)
    assert isinstance(spider, NewsSpider)
    return spider


@pytest.fixture
def spider(redis_url: str) -> NewsSpider:
    return make_spider(redis_url)


@pytest.fixture
def queue(spider: NewsSpider) -> LeasedPriorityQueue:
    return open_scheduler(spider).queue
