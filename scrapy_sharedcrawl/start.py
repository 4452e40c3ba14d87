"""A shared crawl's start requests go into the shared queue at once, not one per engine turn.

Scrapy 2.19's engine takes one item of ``start()`` per loop turn while its
downloader has room, and waits for the scheduler between two: with a shared
queue that is a Redis round trip per start request, and a worker seeding the
crawl (``-a sids=…``) feeds the whole cluster only as fast as it crawls by
itself. Seeds belong in Redis at once, where any worker can take them.

:class:`BulkStartMiddleware` (added by the add-on when ``REDIS_URL`` is set)
hands every start request to ``engine.crawl()`` as it comes — the engine's
public way in, so ``request_scheduled``, the dupefilter and the scheduler work
as for any request — and the scheduler pushes them in pipelined batches.
Items from ``start()`` pass through. It sits closest to the engine (order
``ORDER``), so every other middleware's ``process_start`` has seen the requests
first (``is_start_request`` is set).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from scrapy import Request
from scrapy.crawler import Crawler
from scrapy.utils.asyncio import sleep

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
        handed = 0
        async for item_or_request in start:
            if not isinstance(item_or_request, Request):
                yield item_or_request
                continue
            if engine is None or not engine.running:
                return  # closing: the rest is not crawled, as with Scrapy's own start loop
            engine.crawl(item_or_request)
            handed += 1
            if handed % TURN == 0:
                await sleep(0)
