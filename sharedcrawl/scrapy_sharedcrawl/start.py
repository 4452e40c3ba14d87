"""A shared crawl's start requests go into the shared queue at once, not one per engine turn.

:class:`BulkStartMiddleware` (added by the add-on when ``REDIS_URL`` is set) hands every start request
to ``engine.crawl()`` and sends :data:`~.signals.start_requests_scheduled` once ``start()`` made any,
so the scheduler marks the crawl seeded when they are in Redis.

Design notes: docs/framework-design.md#start.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from scrapy import Request, Spider
from scrapy.crawler import Crawler
from scrapy.utils.asyncio import sleep

from scrapy_sharedcrawl.signals import start_requests_scheduled

#: Its place in ``SPIDER_MIDDLEWARES``: below Scrapy's StartSpiderMiddleware (25), so after it.
ORDER = 5
#: Start requests handed over between two turns of the event loop (downloads and pushes go on).
TURN = 500


class BulkStartMiddleware:
    """Spider middleware: pass every start request to the engine at once (see the module docstring)."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> BulkStartMiddleware:
        return cls(crawler)

    async def process_start(self, start: AsyncIterator[Any]) -> AsyncIterator[Any]:
        engine = self.crawler.engine
        seed_urls = keeps_default_start(self.crawler.spider)
        handed = 0
        async for item_or_request in start:
            if not isinstance(item_or_request, Request):
                yield item_or_request
                continue
            if engine is None or not engine.running:
                return  # closing: the rest is not crawled, as with Scrapy's own start loop
            engine.crawl(as_seed(item_or_request, self.crawler.spider, seed_urls))
            handed += 1
            if handed % TURN == 0:
                await sleep(0)
        if handed:
            spider = self.crawler.spider
            await self.crawler.signals.send_catch_log_async(signal=start_requests_scheduled, spider=spider)


def as_seed(request: Request, spider: Spider | None, default_start: bool | None = None) -> Request:
    """``request`` of ``spider``'s ``start()`` as a seed of the shared crawl: one made by Scrapy's own
    ``start()`` (``default_start``, found out when None) goes through the duplicate filter."""
    if default_start is None:
        default_start = keeps_default_start(spider)
    if default_start and request.dont_filter:
        return request.replace(dont_filter=False)  # one crawl, one seed
    return request


def keeps_default_start(spider: Spider | None) -> bool:
    """Whether ``spider``'s start requests are Scrapy's own, made from ``start_urls``."""
    if spider is None:
        return False
    cls = type(spider)
    default_requests = getattr(Spider, "start_requests", None)  # deprecated in Scrapy 2.13, still honoured
    return cls.start is Spider.start and getattr(cls, "start_requests", None) is default_requests
