"""Requests on their way into the shared queue: few round trips, and none lost while Redis is away.

The engine hands the scheduler one request at a time; a list page yields twenty.
Each waits here and rides along with the engine's next pop (one pipelined round
trip for pushes and pop), or goes alone after ``PUSH_DELAY`` when the engine is
not asking (its downloader is full), at most ``PUSH_BATCH`` per round trip. The
shared dupefilter's verdict comes with the push: a request found seen is then
logged, counted and announced with ``request_dropped``, as Scrapy's scheduler
does at once. While Redis is away requests stay here, in order, and are stored
once it is back (the parent request stays leased meanwhile: see :mod:`.lease_ledger`).
"""

from __future__ import annotations

import heapq
import itertools
import logging
import time
from collections import deque

from scrapy import Request, Spider, signals
from scrapy.crawler import Crawler
from scrapy.dupefilters import BaseDupeFilter
from scrapy.utils.asyncio import sleep
from scrapy.utils.reactor import CallLaterOnce

from scrapy_sharedcrawl.connection import UNREACHABLE, RedisOutage
from scrapy_sharedcrawl.dupefilter import CompactRFPDupeFilter
from scrapy_sharedcrawl.queue import Encoded, LeasedPriorityQueue, Popped
from scrapy_sharedcrawl.scheduler.prefix import STATS

logger = logging.getLogger(__name__)

#: Requests pushed per round trip at most (a burst of start requests, a seed, or the backlog of an
#: outage). A batch is one script, during which every other worker's pop waits: batches of 500 took
#: 7.6 ms on average and up to 13 ms in a seed of 10⁵ (each one past 10 ms also kept in Redis's slow
#: log, ≈ 5 KB); 250 stay under 10 ms for one more round trip of ≈ 0.1 ms a batch.
PUSH_BATCH = 250
#: How long (s) a request waits to ride along with the engine's next pop before it is pushed alone: about
#: the time a worker takes to go through one prefetch (8 requests at 150-300 pages/s), so most ride along
#: (at 5 ms, 40 % of a crawl's round trips were lone pushes); another worker waits for them no longer
#: than its own idle polls (from 0.25 s).
PUSH_DELAY = 0.05


class PushBuffer:
    """The requests of this worker not yet in Redis, and the round trips that store them."""

    def __init__(
        self,
        crawler: Crawler,
        spider: Spider,
        queue: LeasedPriorityQueue,
        dupefilter: BaseDupeFilter,
        outage: RedisOutage,
        worker_id: str,
        lease_seconds: float,
    ) -> None:
        self.crawler = crawler
        self.spider = spider
        self.queue = queue
        self.df = dupefilter
        self.compact = dupefilter if isinstance(dupefilter, CompactRFPDupeFilter) else None
        self.outage = outage
        self.worker_id = worker_id
        self.lease_seconds = lease_seconds
        assert crawler.stats is not None
        self.stats = crawler.stats
        self.waiting: deque[tuple[Encoded, Request]] = deque()
        self._pusher: CallLaterOnce[None] | None = None
        self.closing = False

    def __len__(self) -> int:
        return len(self.waiting)

    def start_timer(self) -> None:
        """In a running crawl: push a request alone when no pop came to carry it within PUSH_DELAY."""
        self._pusher = CallLaterOnce(self._push_soon)

    def stop_timer(self) -> None:
        self.closing = True
        if self._pusher is not None:
            self._pusher.cancel()

    def add(self, entry: Encoded, request: Request) -> None:
        """Hold ``request`` for the next round trip (pushed at once when a batch is full)."""
        self.waiting.append((entry, request))
        if len(self.waiting) >= PUSH_BATCH and self.outage.may_try():
            self.push_all()
        elif self._pusher is not None:
            self._pusher.schedule(PUSH_DELAY)

    def push_all(self) -> bool:
        """Push every waiting request, oldest first; True once none is left."""
        stored = 0
        while self.waiting:
            try:
                stored += self.push_batch()[0]
            except UNREACHABLE as error:
                self.outage.failed(error, len(self.waiting))
                return False
        self.outage.recovered(stored)
        return True

    def _push_soon(self) -> None:
        if self.waiting and not self.closing and self.outage.may_try():
            self.push_all()

    def push_batch(self, pop: int = 0) -> tuple[int, Popped | None]:
        """One round trip: push up to ``PUSH_BATCH`` waiting requests, then lease up to ``pop`` requests
        if ``pop``. Returns how many were queued (not found seen) and the pop. Raises on a connection
        error, the requests still waiting."""
        batch = list(itertools.islice(self.waiting, PUSH_BATCH))
        held = self.outage.down  # these waited through an outage
        results, popped = self.queue.push_and_pop(
            [entry for entry, _ in batch], self.worker_id if pop else None, self.lease_seconds, pop
        )
        for _ in batch:
            self.waiting.popleft()
        pushed = 0
        for (_, request), (status, _) in zip(batch, results, strict=True):
            if status == 0:  # the shared dupefilter has seen it
                self.df.log(request, self.spider)
                self.crawler.signals.send_catch_log(
                    signal=signals.request_dropped, request=request, spider=self.spider
                )
            else:
                pushed += 1
        if batch:
            self.stats.inc_value(f"{STATS}enqueued/redis", pushed)
            self.stats.inc_value(f"{STATS}enqueued", pushed)
            if held:
                self.stats.inc_value(f"{STATS}held", len(batch))
            if self.compact:
                self.compact.note_fill(self.queue.last_fill)
        return pushed, popped

    async def push_before_closing(self) -> None:
        """Try to store held requests for up to one lease time; past it their parents are redone anyway."""
        if not self.waiting or (self.outage.may_try() and self.push_all()):
            return
        deadline = time.monotonic() + self.lease_seconds
        logger.warning(
            "Waiting up to %.0f s for Redis at %s to store %d held requests before closing",
            self.lease_seconds,
            self.outage.where,
            len(self.waiting),
        )
        while self.waiting and time.monotonic() < deadline:
            if self.outage.may_try():
                self.push_all()
            if self.waiting:
                await sleep(min(1.0, max(0.0, self.outage.retry_at - time.monotonic())) or 0.1)
        if self.waiting:
            logger.error(
                "Closing with %d requests never stored in Redis at %s: those found by requests this worker "
                "leased will be found again when the leases expire; start requests need the crawl rerun",
                len(self.waiting),
                self.outage.where,
            )


class LocalRequests:
    """Requests that can't be shared (not serializable): kept in this worker, as Scrapy's scheduler
    keeps them in memory with a JOBDIR; crawled first, lost if the worker dies."""

    def __init__(self, crawler: Crawler, spider: Spider, dupefilter: BaseDupeFilter) -> None:
        assert crawler.stats is not None
        self.stats = crawler.stats
        self.spider = spider
        self.df = dupefilter
        self._heap: list[tuple[int, int, Request]] = []
        self._seq = itertools.count()
        self._logged = False

    def __len__(self) -> int:
        return len(self._heap)

    def add(self, request: Request, error: Exception) -> bool:
        if not self._logged:
            self._logged = True
            logger.warning(
                "Request %s can't be shared through Redis (%s): kept in this worker only, lost if it "
                "dies; later ones are only counted (stats scheduler/unserializable)",
                request,
                error,
            )
        self.stats.inc_value(f"{STATS}unserializable")
        if not request.dont_filter:
            try:
                if self.df.request_seen(request):
                    self.df.log(request, self.spider)
                    return False
            except UNREACHABLE:
                pass  # can't tell: crawl it (a duplicate costs a fetch, a loss costs a story)
        heapq.heappush(self._heap, (-request.priority, next(self._seq), request))
        self.stats.inc_value(f"{STATS}enqueued/memory")
        self.stats.inc_value(f"{STATS}enqueued")
        return True

    def pop(self) -> Request:
        self.stats.inc_value(f"{STATS}dequeued/memory")
        self.stats.inc_value(f"{STATS}dequeued")
        return heapq.heappop(self._heap)[2]
