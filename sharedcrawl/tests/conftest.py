"""The framework's own tests: a private Redis (the framework's pytest plugin) and a generic spider of
the shared crawl with its leased queue. Nothing here imports a project built on the framework."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from news_spider import NewsSpider

from scrapy_sharedcrawl.queue import LeasedPriorityQueue
from scrapy_sharedcrawl.testing.scheduling import open_scheduler, shared_spider

#: fixtures redis_srv / redis_url (a private Redis)
pytest_plugins = ("scrapy_sharedcrawl.testing.fixtures",)

#: Tests sit in folders by the module they test (docs/testing.md) and some import another's helpers by
#: its module name (``from test_fuzz_admitted_urls import SEED``) across folders: every folder is on the
#: path, whichever file pytest collects first (test files' names are unique).
TESTS = Path(__file__).resolve().parent
sys.path.extend(
    str(folder) for folder in sorted(TESTS.iterdir()) if folder.is_dir() and any(folder.glob("test_*.py"))
)


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
