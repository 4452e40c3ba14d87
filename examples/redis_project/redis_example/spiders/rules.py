"""A ``RedisCrawlSpider``: rules with link extractors, fed through ``rules:start_urls``."""

from __future__ import annotations

from typing import Any

from scrapy.http import Response
from scrapy.linkextractors import LinkExtractor
from scrapy.spiders import Rule
from scrapy_redis.spiders import RedisCrawlSpider


class RulesSpider(RedisCrawlSpider):
    name = "rules"
    allowed_domains = ("127.0.0.1",)
    rules = (Rule(LinkExtractor(allow=r"/page/\d+$"), callback="parse_page", follow=True),)

    def parse_start_url(self, response: Response, **kwargs: Any) -> Any:
        return self.parse_page(response)

    def parse_page(self, response: Response) -> dict[str, Any]:
        return {"url": response.url, "title": response.css("title::text").get()}
