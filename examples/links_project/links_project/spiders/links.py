"""Follow every link of one site and keep each page's title: a generic spider, fed through Redis."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import scrapy
from scrapy.http import Response


class LinksSpider(scrapy.Spider):
    """No start URLs of its own: feed it with ``LPUSH links:start_urls URL`` (scrapy-redis's habit)."""

    name = "links"

    def parse(self, response: Response) -> Iterator[Any]:
        yield {"url": response.url, "title": response.css("title::text").get()}
        for href in response.css("a::attr(href)").getall():
            yield response.follow(href, self.parse)
