"""A Scrapy extension for benchmarks of any project: the crawl's stats as JSON when it closes.

``-s EXTENSIONS='{"stats_file.StatsFile": 0}' -s BENCH_STATS_FILE=path`` (with ``bench/`` on the
path). ``elapsed_time_seconds`` is measured here as CoreStats measures it (its own handler may run
after this one).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from scrapy import Spider, signals
from scrapy.crawler import Crawler
from scrapy.exceptions import NotConfigured


class StatsFile:
    def __init__(self, crawler: Crawler, path: str) -> None:
        self.crawler = crawler
        self.path = Path(path)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> StatsFile:
        path = crawler.settings.get("BENCH_STATS_FILE")
        if not path:
            raise NotConfigured("BENCH_STATS_FILE is not set")
        extension = cls(crawler, path)
        crawler.signals.connect(extension.spider_closed, signal=signals.spider_closed)
        return extension

    def spider_closed(self, spider: Spider) -> None:
        assert self.crawler.stats is not None
        stats = self.crawler.stats.get_stats()
        stats["elapsed_time_seconds"] = (datetime.now(UTC) - stats["start_time"]).total_seconds()
        plain = {
            key: (value.isoformat() if hasattr(value, "isoformat") else value) for key, value in stats.items()
        }
        self.path.write_text(json.dumps(plain))
