"""What the shared queue would not take, and what Redis lost: dropped, buried or reported, each
counted and logged once per kind (:mod:`.admission` decides what a queued request may be)."""

from __future__ import annotations

import logging

from scrapy import Request, Spider, signals
from scrapy.crawler import Crawler

from scrapy_sharedcrawl.admission import RefusedRequest
from scrapy_sharedcrawl.outage import OncePerReason
from scrapy_sharedcrawl.queue import LeasedPriorityQueue
from scrapy_sharedcrawl.scheduler.prefix import STATS

logger = logging.getLogger(__name__)


class QueueRejects:
    """The scheduler's refusals (pushing), dead letters (popping) and lost payloads."""

    def __init__(self, crawler: Crawler) -> None:
        assert crawler.stats is not None
        self.crawler = crawler
        self.stats = crawler.stats
        self._refused = OncePerReason(self.stats, f"{STATS}refused/", logger)
        self._buried = OncePerReason(self.stats, f"{STATS}dead/", logger, logging.ERROR)

    def refuse(self, request: Request, error: RefusedRequest, spider: Spider) -> bool:
        """A request the shared queue does not take: dropped, as Scrapy's offsite filter drops a
        request for another site (``request_dropped``). Always False (not queued)."""
        self._refused(error.reason, "Request %s not queued (%s)", request, error)
        self.crawler.signals.send_catch_log(signal=signals.request_dropped, request=request, spider=spider)
        return False

    def bury(self, queue: LeasedPriorityQueue, worker_id: str, request_id: str, reason: str) -> None:
        """A payload ``worker_id`` leased from the queue that is not a request this spider may run: into
        the dead letters, never retried. Raises redis errors (the caller rides out the outage)."""
        kind = reason.split(":", 1)[0].strip() or "payload"
        self.stats.inc_value(f"{STATS}dead")
        self._buried(
            kind,
            "Queued request %s refused (%s): moved to the dead letters %s, never retried",
            request_id,
            reason,
            queue.dead_key,
        )
        queue.bury(worker_id, request_id, reason)

    def payloads_missing(self, count: int, where: str) -> None:
        """Queue members without a payload: never written by a worker, and nothing to crawl."""
        self.stats.inc_value(f"{STATS}payload_missing", count)
        logger.error(
            "%d queued requests had lost their payload in Redis at %s (evicted: maxmemory-policy is not "
            "noeviction?): they are lost; seed the crawl again to find them (stats %spayload_missing)",
            count,
            where,
            STATS,
        )
