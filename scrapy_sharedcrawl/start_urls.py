"""Feeding a crawl by hand, as scrapy-redis users do: ``LPUSH <spider>:start_urls URL``.

scrapy-redis's ``RedisSpider`` reads start URLs from a Redis list (or set, with
``REDIS_START_URLS_AS_SET``) named by ``REDIS_START_URLS_KEY``. Here any spider of a
shared crawl does, without a special base class: each worker's scheduler looks at the
key about once a second, turns what it finds into requests and queues them like any
other (the shared dupefilter applies: a URL already crawled is not crawled again), and
marks the crawl seeded. An entry leaves the key only once its request is stored in the
shared queue, so a worker killed in between loses nothing (another worker reads the
entry again; the dupefilter absorbs the repeat).

An entry is a URL, or a JSON object ``{"url": …, "meta": {…}, "priority": n, "method":
"GET"}``; a spider may define ``make_request_from_data(data: bytes)`` to read its own
format, as with scrapy-redis. An entry that makes no request is dropped, counted and
logged once.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import redis
from scrapy import Request, Spider
from scrapy.settings import BaseSettings
from scrapy.statscollectors import StatsCollector

from scrapy_sharedcrawl.config import setting
from scrapy_sharedcrawl.defaults import SETTINGS as DEFAULTS
from scrapy_sharedcrawl.outage import OncePerReason

logger = logging.getLogger(__name__)

STATS = "scheduler/start_urls/"
#: Seconds between two looks at the key.
INTERVAL = 1.0
#: Longest entry read (bytes): a URL or a small JSON object, not a document.
ENTRY_MAX = 8192


class StartUrls:
    """The start-URLs key of one spider (see the module docstring)."""

    def __init__(
        self, server: redis.Redis, spider: Spider, stats: StatsCollector, key: str, as_set: bool, batch: int
    ) -> None:
        self.server = server
        self.spider = spider
        self.stats = stats
        self.key = key
        self.as_set = as_set
        self.batch = max(1, batch)
        self._invalid = OncePerReason(stats, f"{STATS}invalid/", logger)

    @classmethod
    def from_settings(cls, server: redis.Redis, spider: Spider, settings: BaseSettings) -> StartUrls:
        assert spider.crawler.stats is not None
        key = str(setting(settings, "REDIS_START_URLS_KEY", DEFAULTS)) % {"name": spider.name}
        as_set = settings.getbool("REDIS_START_URLS_AS_SET", DEFAULTS["REDIS_START_URLS_AS_SET"])
        batch = int(setting(settings, "REDIS_START_URLS_BATCH_SIZE", DEFAULTS))
        return cls(server, spider, spider.crawler.stats, key, as_set, batch)

    def read(self) -> list[bytes]:
        """Up to a batch of entries, left in the key (raises redis errors)."""
        if self.as_set:
            entries = self.server.srandmember(self.key, self.batch)
        else:
            entries = self.server.lrange(self.key, 0, self.batch - 1)
        return list(entries or [])  # type: ignore[arg-type]

    def remove(self, entries: list[bytes]) -> None:
        """Take ``entries`` out of the key: their requests are stored (raises redis errors)."""
        if not entries:
            return
        if self.as_set:
            self.server.srem(self.key, *entries)
            return
        pipe = self.server.pipeline(transaction=True)
        for entry in entries:
            pipe.lrem(self.key, 1, entry)  # type: ignore[arg-type]  # redis-py takes bytes values too
        pipe.execute()

    def requests(self, entries: list[bytes]) -> list[Request]:
        """The requests of ``entries``; an entry that makes none is counted and logged once."""
        made = []
        for entry in entries:
            try:
                request = self._request(entry)
            except (ValueError, TypeError, UnicodeDecodeError) as error:
                self._invalid(
                    type(error).__name__, "Start URL entry %r in %s dropped: %s", entry[:200], self.key, error
                )
                continue
            if request is not None:
                made.append(request)
        self.stats.inc_value(f"{STATS}read", len(entries))
        return made

    def _request(self, entry: bytes) -> Request | None:
        if len(entry) > ENTRY_MAX:
            raise ValueError(f"entry of {len(entry):,} bytes (at most {ENTRY_MAX:,})")
        make = getattr(self.spider, "make_request_from_data", None)
        if callable(make):
            request = make(entry)
            if request is not None and not isinstance(request, Request):
                raise TypeError(f"make_request_from_data returned {type(request).__name__}, not a Request")
            return request
        return request_from_data(entry)


def request_from_data(entry: bytes) -> Request:
    """A request from a start-URLs entry: a URL, or a JSON object with ``url`` (and ``meta``,
    ``priority``, ``method``), as scrapy-redis reads them. Raises ValueError for anything else."""
    text = entry.decode("utf-8").strip()
    if not text.startswith("{"):
        return Request(text)
    data: Any = json.loads(text)
    if not isinstance(data, dict) or not isinstance(data.get("url"), str):
        raise ValueError("a JSON entry needs a string 'url'")
    meta = data.get("meta", {})
    priority = data.get("priority", 0)
    method = data.get("method", "GET")
    if not isinstance(meta, dict) or not isinstance(priority, int) or not isinstance(method, str):
        raise ValueError("'meta' must be an object, 'priority' an integer and 'method' a string")
    return Request(data["url"], meta=meta, priority=priority, method=method)
