"""A plain ``CrawlSpider`` with its own start URL (``-a site=…``): its workers share one crawl."""

from __future__ import annotations

from typing import Any

from scrapy.http import Response
from scrapy.linkextractors import LinkExtractor
from scrapy.spiders import CrawlSpider, Rule


class CrawlPagesSpider(CrawlSpider):
    name = "crawl"
    allowed_domains = ("127.0.0.1",)
    rules = (Rule(LinkExtractor(allow=r"/page/\d+$"), callback="parse_page", follow=True),)

    def __init__(self, site: str = "http://127.0.0.1:8000", *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.start_urls = [f"{site.rstrip('/')}/"]

    def parse_start_url(self, response: Response, **kwargs: Any) -> Any:
        return self.parse_page(response)

    def parse_page(self, response: Response) -> dict[str, Any]:
        return {"url": response.url, "title": response.css("title::text").get()}
