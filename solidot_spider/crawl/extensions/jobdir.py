"""Forget a finished crawl's JOBDIR state, keep an interrupted one's.

Scrapy keeps ``requests.seen`` in JOBDIR after a crawl *finishes*, so running
the same command again would filter every request and fetch nothing. With
this extension a JOBDIR is a resume point only: an interrupted crawl (Ctrl-C,
``shutdown``) keeps it and resumes; a crawl that finished clears it.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from scrapy import Spider, signals
from scrapy.crawler import Crawler
from scrapy.exceptions import NotConfigured

logger = logging.getLogger(__name__)

#: What Scrapy writes in a JOBDIR: the queue, the seen fingerprints, spider state.
JOBDIR_ENTRIES = ("requests.queue", "requests.seen", "spider.state")


class ClearFinishedJobdir:
    """On a ``finished`` close, remove Scrapy's resume state from JOBDIR."""

    def __init__(self, jobdir: Path) -> None:
        self.jobdir = jobdir
        self.reason: str | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ClearFinishedJobdir:
        jobdir = crawler.settings.get("JOBDIR")
        if not jobdir or not crawler.settings.getbool("SOLIDOT_JOBDIR_CLEAR_ON_FINISH"):
            raise NotConfigured
        extension = cls(Path(jobdir))
        # after the scheduler and dupefilter have written their state
        crawler.signals.connect(extension.engine_stopped, signal=signals.engine_stopped)
        crawler.signals.connect(extension.spider_closed, signal=signals.spider_closed)
        return extension

    def spider_closed(self, spider: Spider, reason: str) -> None:
        self.reason = reason

    def engine_stopped(self) -> None:
        if self.reason != "finished":
            logger.info("Crawl stopped (%s): %s kept for resuming", self.reason, self.jobdir)
            return
        for name in JOBDIR_ENTRIES:
            path = self.jobdir / name
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()
        logger.info("Crawl finished: cleared the resume state in %s", self.jobdir)
