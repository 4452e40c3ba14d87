"""A generic spider for the framework's tests: a news site's list pages and stories, with the
spider contract a real project uses (callbacks and meta a queued request may name, request defaults
left out of the queue's payloads). It never crawls: the tests build its requests."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any, ClassVar

import scrapy
from scrapy.http import Response

#: Stories before list pages: a story is the end of a path.
STORY_PRIORITY = 10
BASE_URL = "http://www.news.test:8080"


class NewsSpider(scrapy.Spider):
    name = "news"
    allowed_domains: ClassVar[list[str]] = ["news.test"]
    shared_callbacks = frozenset({"parse_list", "parse_story", "story_failed"})
    shared_meta = frozenset({"from_range"})
    shared_request_defaults: ClassVar[dict[str, Any]] = {
        "callback": "parse_story",
        "errback": "story_failed",
        "priority": STORY_PRIORITY,
        "meta": {"handle_httpstatus_list": [404], "from_range": False},
    }

    def home_url(self) -> str:
        return BASE_URL + "/"

    def story_url(self, sid: int) -> str:
        return f"{BASE_URL}/story?sid={sid}"

    def list_request(self, url: str, cb_kwargs: dict[str, Any] | None = None) -> scrapy.Request:
        return scrapy.Request(url, callback=self.parse_list, cb_kwargs=cb_kwargs or {})

    def story_request(
        self,
        sid: int,
        categories: list[str] | None = None,
        from_range: bool = False,
        dont_filter: bool = False,
    ) -> scrapy.Request:
        return scrapy.Request(
            self.story_url(sid),
            callback=self.parse_story,
            errback=self.story_failed,
            priority=STORY_PRIORITY,
            dont_filter=dont_filter,
            cb_kwargs={"categories": categories or []},
            meta={"handle_httpstatus_list": [404], "from_range": from_range},
        )

    def parse_list(self, response: Response) -> Iterator[scrapy.Request]:
        for href in response.css("a.story::attr(href)").getall():
            yield self.story_request(story_sid(response.urljoin(href)))

    def parse_story(self, response: Response, categories: list[str]) -> Iterator[dict[str, Any]]:
        yield {"url": response.url, "categories": categories}

    def story_failed(self, failure: Any) -> None:
        self.logger.info("story failed: %s", failure)


def story_sid(url: str) -> int:
    """The story id in a story URL."""
    match = re.search(r"[?&]sid=(\d+)", url)
    if match is None:
        raise ValueError(f"not a story URL: {url}")
    return int(match.group(1))
