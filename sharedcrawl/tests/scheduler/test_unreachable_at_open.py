"""A worker started without its Redis: one clear line, and a close that hands nothing back.

Scrapy closes the scheduler even when its ``open`` raised; the close used to fail on parts the open
never built ("'LeasingScheduler' object has no attribute 'heartbeat'"), a second traceback after the
real cause. No server listens on port 1 of 127.0.0.1 (a real refused connection, not a mock).
"""

from __future__ import annotations

import asyncio
import logging

import pytest
import scrapy
from scrapy.utils.defer import maybe_deferred_to_future
from scrapy.utils.test import get_crawler

from scrapy_sharedcrawl.addon import SHARED_SETTINGS
from scrapy_sharedcrawl.scheduler import LeasingScheduler

DEAD_REDIS = "redis://127.0.0.1:1/0"


class QuietSpider(scrapy.Spider):
    name = "quiet"


def test_a_scheduler_whose_redis_is_down_says_so_once_and_closes_quietly(
    caplog: pytest.LogCaptureFixture,
) -> None:
    crawler = get_crawler(QuietSpider, {"REDIS_URL": DEAD_REDIS, **SHARED_SETTINGS})
    spider = QuietSpider.from_crawler(crawler)
    crawler.spider = spider
    scheduler = LeasingScheduler.from_crawler(crawler)

    with pytest.raises(
        RuntimeError, match=r"^Redis unreachable at redis://127\.0\.0\.1:1/0 \(.*\): start it"
    ):
        scheduler.open(spider)

    caplog.set_level(logging.DEBUG)

    async def shut_down() -> None:  # as Scrapy's engine does after a failed open
        await maybe_deferred_to_future(scheduler.close("shutdown"))

    asyncio.run(shut_down())  # raised nothing
    assert not [record for record in caplog.records if record.levelno >= logging.WARNING], caplog.text
    assert "without having opened" in caplog.text
