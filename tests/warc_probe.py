"""A test instrument loaded into a worker process (``EXTENSIONS``): it records, in order, every
fsync the process makes (the file and the size it held) and every batch of requests acknowledged,
and can make the disk "fill up" at a given file size.

It wraps ``os.fsync`` for the whole process (a worker started by a test, nothing else runs in it);
the disk fills by ``RLIMIT_FSIZE``: the kernel refuses a write past that size (EFBIG), as it refuses
one on a full disk (ENOSPC), and SIGXFSZ is ignored so the write fails instead of killing the process.
"""

from __future__ import annotations

import json
import os
import resource
import signal
from pathlib import Path
from typing import Any

from scrapy import signals
from scrapy.crawler import Crawler
from scrapy.exceptions import NotConfigured

from scrapy_sharedcrawl.signals import requests_acknowledged


class WarcProbe:
    """Writes ``{"events": [...]}`` to ``WARC_PROBE_FILE`` when the spider closes."""

    def __init__(self, crawler: Crawler, out: Path) -> None:
        self.crawler = crawler
        self.out = out
        self.events: list[dict[str, Any]] = []
        real_fsync = os.fsync

        def fsync(fd: int) -> None:
            path = os.readlink(f"/proc/self/fd/{fd}")
            size = os.fstat(fd).st_size
            real_fsync(fd)
            self.events.append({"sync": path, "size": size})  # from the barrier's thread: append is atomic

        os.fsync = fsync

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> WarcProbe:
        out = crawler.settings.get("WARC_PROBE_FILE")
        if not out:
            raise NotConfigured
        limit = crawler.settings.getint("WARC_PROBE_FILE_LIMIT")
        if limit:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
        probe = cls(crawler, Path(out))
        crawler.signals.connect(probe.acknowledged, signal=requests_acknowledged)
        crawler.signals.connect(probe.closed, signal=signals.spider_closed)
        return probe

    def acknowledged(self, urls: list[str], scheduler: Any = None) -> None:
        assert self.crawler.stats is not None
        errors = sum(
            value for name, value in self.crawler.stats.get_stats().items() if name.startswith("warc/errors/")
        )
        self.events.append({"ack": list(urls), "warc_errors": errors})

    def closed(self) -> None:
        self.out.write_text(json.dumps({"events": self.events}))
