"""Put requests into the shared queue from outside a crawl (seeding tools, tests).

The requests go through the same atomic check-and-push as a worker's, in
pipelined batches: seeding twice queues nothing new, and a request the crawl
has already seen is skipped.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from scrapy import Request, Spider

from solidot_spider.scheduling.dupefilter import CompactRFPDupeFilter
from solidot_spider.scheduling.queue import Encoded, LeasedPriorityQueue

#: Requests per round trip.
BATCH = 500


@dataclass(frozen=True)
class SeedResult:
    """How many requests were queued, and how many were skipped as seen (or already queued)."""

    queued: int
    seen: int


class Seeder:
    """The queue and dupefilter a worker of ``spider``'s crawl uses (same settings, same keys)."""

    def __init__(self, spider: Spider) -> None:
        from solidot_spider.scheduling.scheduler import LeasingScheduler

        scheduler = LeasingScheduler.from_crawler(spider.crawler)
        if scheduler.compact is None:
            raise TypeError("seeding needs DUPEFILTER_CLASS = CompactRFPDupeFilter")
        scheduler.open(spider)
        self.queue: LeasedPriorityQueue = scheduler.queue
        self.dupefilter: CompactRFPDupeFilter = scheduler.compact

    def seed(self, requests: Iterable[Request]) -> SeedResult:
        """Check and push ``requests``, one round trip per :data:`BATCH`."""
        queued = seen = 0
        batch: list[Encoded] = []
        for request in requests:
            check = None if request.dont_filter else self.dupefilter.check(request)
            batch.append(self.queue.encode(request, check))
            if len(batch) >= BATCH:
                pushed = self._push(batch)
                queued, seen, batch = queued + pushed, seen + len(batch) - pushed, []
        pushed = self._push(batch)
        return SeedResult(queued + pushed, seen + len(batch) - pushed)

    def _push(self, batch: list[Encoded]) -> int:
        return sum(status == 1 for status, _ in self.queue.push_many(batch))
