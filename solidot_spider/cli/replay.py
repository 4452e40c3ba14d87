"""``solidot-crawl reparse``'s crawl: the stored story responses through the crawl's own machinery.

:class:`ReplaySpider` turns each stored ``200`` story response into the crawl's request and
:class:`ReplayMiddleware` answers it from the archive, so the same middlewares, ``parse_story``,
pipelines and feeds run as in the crawl; nothing leaves the machine.

Design notes: docs/project-design.md#cli-replay.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Iterable, Iterator
from pathlib import Path
from typing import Any

import scrapy
from scrapy import Request, signals
from scrapy.crawler import Crawler
from scrapy.exceptions import IgnoreRequest
from scrapy.http import Headers, Response
from scrapy.responsetypes import responsetypes

from scrapy_sharedcrawl.warc.reader import StoredResponse, WarcReader
from scrapy_sharedcrawl.warc.records import CB_KWARGS
from solidot_spider.site.items import Story
from solidot_spider.site.urls import story_sid
from solidot_spider.spiders.solidot import SolidotSpider

logger = logging.getLogger(__name__)

#: Request meta key holding the stored response a request is answered with.
REPLAY_META = "solidot_warc_response"
#: Requests handed to the engine at a time.
BATCH = 64
#: What a stored ``categories`` may be: a short list of short names.
MAX_CATEGORIES, MAX_CATEGORY_LENGTH = 32, 64
STATS_PREFIX = "solidot/reparse/"

#: Settings of a replay, over the project's and the operator's: no network, no Redis, no WARC
#: of the replay itself, no politeness to wait for, requests in the order they were stored.
REPLAY_SETTINGS: dict[str, Any] = {
    "REDIS_URL": "",
    "WARC_DIR": "",
    "SOLIDOT_OUTPUT": "",
    "DOWNLOAD_HANDLERS": {"http": None, "https": None},
    "ROBOTSTXT_OBEY": False,
    "AUTOTHROTTLE_ENABLED": False,
    "DOWNLOAD_DELAY": 0,
    "RETRY_ENABLED": False,
    "SOLIDOT_TRUNCATED_RETRIES": 0,
    "HTTPCACHE_ENABLED": False,
    "CONCURRENT_REQUESTS": BATCH // 2,
    "CONCURRENT_REQUESTS_PER_DOMAIN": BATCH // 2,
    "SCHEDULER_MEMORY_QUEUE": "scrapy.squeues.FifoMemoryQueue",
    "SCHEDULER_START_MEMORY_QUEUE": "scrapy.squeues.FifoMemoryQueue",
    "JOBDIR": None,
}
REPLAY_MIDDLEWARE = {"solidot_spider.cli.replay.ReplayMiddleware": 990}


class ReplaySpider(SolidotSpider):
    """The ``solidot`` spider, fed from WARC files instead of the site."""

    def __init__(self, *args: Any, warc_files: list[Path], reader: WarcReader, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.warc_files = warc_files
        self.reader = reader
        self._room = asyncio.Event()

    @classmethod
    def from_crawler(cls, crawler: Crawler, *args: Any, **kwargs: Any) -> ReplaySpider:
        spider = super().from_crawler(crawler, *args, **kwargs)
        assert isinstance(spider, ReplaySpider)
        crawler.signals.connect(spider._room.set, signal=signals.scheduler_empty)
        return spider

    async def start(self) -> AsyncIterator[scrapy.Request]:
        for handed, request in enumerate(self.replay_requests(), start=1):
            yield request
            if handed % BATCH == 0:
                await self._room.wait()
                self._room.clear()

    def replay_requests(self) -> Iterator[Request]:
        """The crawl's request for each stored 200 story response on the site, in stored order."""
        stats = self.crawler.stats
        for stored in self.reader.responses(self.warc_files):
            sid = story_sid(stored.uri)
            if sid is None or self.site.host_label(stored.uri) is None:
                stats.inc_value(STATS_PREFIX + "other_pages")  # lists, RSS, robots.txt, other sites
                continue
            if stored.status != 200:
                stats.inc_value(STATS_PREFIX + f"status/{stored.status}")
                continue
            request = self.story_request(sid, categories=self._categories(stored))
            request.meta[REPLAY_META] = stored
            stats.inc_value(STATS_PREFIX + "responses")
            yield request.replace(url=stored.uri, dont_filter=True)

    def _categories(self, stored: StoredResponse) -> list[str]:
        """The categories the crawl passed to ``parse_story`` (kept in the fetch's metadata)."""
        text = stored.context.get(CB_KWARGS)
        if text is None:
            return []
        try:
            categories = json.loads(text).get("categories", [])
        except (ValueError, AttributeError):
            categories = None
        if (
            not isinstance(categories, list)
            or len(categories) > MAX_CATEGORIES
            or not all(isinstance(c, str) and len(c) <= MAX_CATEGORY_LENGTH for c in categories)
        ):
            self.crawler.stats.inc_value(STATS_PREFIX + "bad_metadata")
            logger.warning("Ignored the unusable metadata stored with %s", stored.uri)
            return []
        return categories

    def parse_story(self, response: Response, categories: list[str]) -> Iterable[Any]:
        """The crawl's story, fetched when the record says: a list, like the crawl's callback (a
        generator would make Scrapy read its source on every response)."""
        stored = response.meta.get(REPLAY_META)
        outputs = list(super().parse_story(response, categories))
        for output in outputs:
            if isinstance(output, Story) and isinstance(stored, StoredResponse):
                output.fetched_at = stored.date.isoformat(timespec="seconds")
        return outputs


class ReplayMiddleware:
    """Answers each request with its stored response; a request without one goes nowhere."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ReplayMiddleware:
        return cls(crawler)

    def process_request(self, request: Request) -> Response:
        stored = request.meta.get(REPLAY_META)
        if not isinstance(stored, StoredResponse):
            assert self.crawler.stats is not None
            self.crawler.stats.inc_value(STATS_PREFIX + "not_stored")
            raise IgnoreRequest(f"not in the WARC files (a replay fetches nothing): {request.url}")
        headers = Headers(stored.headers)
        cls = responsetypes.from_args(headers=headers, url=stored.uri, body=stored.body)
        return cls(
            url=stored.uri,
            status=stored.status,
            headers=headers,
            body=stored.body,
            request=request,
            flags=["warc"],
        )
