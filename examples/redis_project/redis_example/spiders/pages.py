"""A ``RedisSpider`` with a key of its own: ``LPUSH pages_feed:urls <url or JSON>`` feeds it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from scrapy.http import Response
from scrapy_redis.spiders import RedisSpider


class PagesSpider(RedisSpider):
    name = "pages"
    redis_key = "pages_feed:urls"
    allowed_domains = ("127.0.0.1",)

    def parse(self, response: Response) -> Iterator[Any]:
        yield {
            "url": response.url,
            "title": response.css("title::text").get(),
            "tag": response.meta.get("tag"),  # from a JSON entry's meta
        }
        for href in response.css("a::attr(href)").getall():
            yield response.follow(href, self.parse)
