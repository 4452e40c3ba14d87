"""Put requests into the shared queue from outside a crawl (seeding tools such as ``sharedcrawl seed``).

The requests go through the same atomic check-and-push as a worker's, in
pipelined batches: seeding twice queues nothing new, and a request the crawl
has already seen is skipped. Once they are all in, the crawl is marked as
seeded (:mod:`.finishing`), which tells waiting workers that an empty queue
from then on means "finished", not "not started yet".
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from scrapy import Request, Spider

from scrapy_sharedcrawl.dupefilter import CompactRFPDupeFilter
from scrapy_sharedcrawl.finishing import ClusterStatus, CrawlState
from scrapy_sharedcrawl.queue import Encoded, LeasedPriorityQueue
from scrapy_sharedcrawl.scheduler import LeasingScheduler
from scrapy_sharedcrawl.scheduler.push_buffer import PUSH_BATCH


@dataclass(frozen=True)
class SeedResult:
    """How many requests were queued, how many were skipped as seen (or already queued), and the
    id of the crawl they belong to (None when not marked)."""

    queued: int
    seen: int
    crawl_id: str | None = None


class Seeder:
    """The queue and dupefilter a worker of ``spider``'s crawl uses (same settings, same keys)."""

    def __init__(self, spider: Spider) -> None:
        scheduler = LeasingScheduler.from_crawler(spider.crawler)
        if scheduler.compact is None:
            raise TypeError("seeding needs DUPEFILTER_CLASS = CompactRFPDupeFilter")
        scheduler.open(spider)
        self.where = scheduler.where
        self.queue: LeasedPriorityQueue = scheduler.queue
        self.dupefilter: CompactRFPDupeFilter = scheduler.compact
        self.state: CrawlState = scheduler.state

    def seed(self, requests: Iterable[Request], mark: bool = True) -> SeedResult:
        """Check and push ``requests``, one round trip per :data:`.push_buffer.PUSH_BATCH` (as a worker
        pushes); then, if ``mark``, mark the crawl as seeded (``mark=False`` to seed in several calls,
        marking with the last)."""
        queued = seen = 0
        batch: list[Encoded] = []
        for request in requests:
            # a seed is a start request of the crawl (as Scrapy marks them): a dont_filter is admitted on it
            request.meta.setdefault("is_start_request", True)
            check = None if request.dont_filter else self.dupefilter.check(request)
            batch.append(self.queue.encode(request, check))
            if len(batch) >= PUSH_BATCH:
                pushed = self._push(batch)
                queued, seen, batch = queued + pushed, seen + len(batch) - pushed, []
        pushed = self._push(batch)
        crawl_id = self.state.mark_seeded() if mark else None
        return SeedResult(queued + pushed, seen + len(batch) - pushed, crawl_id)

    def status(self) -> ClusterStatus:
        """The shared crawl right now (queued, leased, the crawl marked as seeded)."""
        return self.state.status()

    def _push(self, batch: list[Encoded]) -> int:
        return sum(status == 1 for status, _ in self.queue.push_many(batch))
