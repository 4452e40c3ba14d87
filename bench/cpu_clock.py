"""The crawl's own CPU time, for the crawl benchmarks: a pass-through spider middleware.

``-s SPIDER_MIDDLEWARES={"cpu_clock.CpuClock": 0} -s BENCH_CPU_FILE=PATH`` (with
``bench/`` on ``PYTHONPATH``) writes ``{"cpu_seconds": …}``: the process's CPU time,
all threads, from spider open to spider close, so start-up is left out as it is from
``elapsed_time_seconds``. On a machine shared with other work, CPU per page moves far
less than pages/s, which counts the time other processes held the cores.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from scrapy import signals
from scrapy.crawler import Crawler
from scrapy.exceptions import NotConfigured


class CpuClock:
    """Measures the process's CPU time between ``spider_opened`` and ``spider_closed``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.started = time.process_time()

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> CpuClock:
        path = crawler.settings.get("BENCH_CPU_FILE")
        if not path:
            raise NotConfigured
        clock = cls(Path(path))
        crawler.signals.connect(clock.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(clock.spider_closed, signal=signals.spider_closed)
        return clock

    def spider_opened(self) -> None:
        self.started = time.process_time()

    def spider_closed(self) -> None:
        self.path.write_text(json.dumps({"cpu_seconds": time.process_time() - self.started}))
