"""The baseline: a minimal plain Scrapy spider fetching the same story pages.

Run by bench/crawl_throughput.py with ``scrapy runspider`` outside the project,
so only Scrapy's defaults apply (plus the same concurrency as the solidot run).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import scrapy


class PlainSpider(scrapy.Spider):
    name = "plain"

    def __init__(self, base: str, low: str, high: str, stats_file: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.base, self.low, self.high, self.stats_file = base, int(low), int(high), stats_file

    async def start(self) -> AsyncIterator[scrapy.Request]:
        for sid in range(self.high, self.low - 1, -1):
            yield scrapy.Request(f"{self.base}/story?sid={sid}", meta={"handle_httpstatus_list": [404]})

    def parse(self, response: scrapy.http.Response) -> Iterator[dict[str, Any]]:
        if response.status == 200:
            yield {"url": response.url, "title": response.css("h2::text").get()}

    def closed(self, reason: str) -> None:
        # CoreStats sets elapsed_time_seconds after this handler runs: measure it the same way here
        started = self.crawler.stats.get_value("start_time")
        elapsed = (datetime.now(UTC) - started).total_seconds()
        self.crawler.stats.set_value("elapsed_time_seconds", elapsed)
        stats = {
            k: (v.isoformat() if hasattr(v, "isoformat") else v)
            for k, v in self.crawler.stats.get_stats().items()
        }
        Path(self.stats_file).write_text(json.dumps(stats))
