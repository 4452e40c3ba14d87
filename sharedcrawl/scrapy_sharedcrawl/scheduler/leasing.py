"""The shared scheduler: any number of workers crawl one Redis queue, and a dead worker loses nothing.

:class:`LeasingScheduler` is Scrapy's scheduler interface (extending scrapy-redis's, with its setting
names) over the parts that do the work: :mod:`.serialization`, :mod:`.queue`, :mod:`.dupefilter`,
:mod:`.lease_ledger`, :mod:`.finishing`. How a request travels: ``docs/shared-crawl.md``.

Design notes: docs/framework-design.md#scheduler.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from scrapy import Request, Spider, signals
from scrapy.crawler import Crawler
from scrapy.dupefilters import BaseDupeFilter
from scrapy.exceptions import CloseSpider
from scrapy.statscollectors import StatsCollector
from scrapy.utils.defer import deferred_from_coro
from scrapy.utils.misc import build_from_crawler, load_object
from scrapy_redis.scheduler import Scheduler as StockScheduler
from twisted.internet.defer import Deferred

from scrapy_sharedcrawl import redis_spiders, serialization
from scrapy_sharedcrawl.admission import RefusedRequest
from scrapy_sharedcrawl.connection import (
    UNREACHABLE,
    RedisOutage,
    describe,
    redis_from_settings,
    warn_unless_noeviction,
)
from scrapy_sharedcrawl.dupefilter import CompactRFPDupeFilter
from scrapy_sharedcrawl.finishing import CrawlState, Finisher, IdlePolls, Verdict
from scrapy_sharedcrawl.keys import CrawlKeys, this_worker
from scrapy_sharedcrawl.queue import LeasedPriorityQueue
from scrapy_sharedcrawl.scheduler.crawl_end import CrawlEnd
from scrapy_sharedcrawl.scheduler.engine_hooks import EngineHooks
from scrapy_sharedcrawl.scheduler.heartbeat import Heartbeat
from scrapy_sharedcrawl.scheduler.lease_ledger import LeaseLedger, feed_flusher
from scrapy_sharedcrawl.scheduler.prefix import STATS
from scrapy_sharedcrawl.scheduler.push_buffer import PUSH_BATCH, LocalRequests, PushBuffer
from scrapy_sharedcrawl.scheduler.rejects import QueueRejects
from scrapy_sharedcrawl.scheduler.settings import SchedulerSettings
from scrapy_sharedcrawl.signals import hold_output, start_requests_scheduled
from scrapy_sharedcrawl.start_urls import StartUrls

logger = logging.getLogger(__name__)

#: Seconds a worker with requests in progress waits before asking an empty queue again.
EMPTY_POP_PAUSE = 0.05
#: Longest wait (s) for a host of the queue to become due before Redis is asked again anyway.
HOST_DUE_MAX = 1.0


class LeasingScheduler(StockScheduler):
    """A Scrapy 2.19 scheduler over a shared, leased Redis queue (see the module docstring)."""

    def __init__(
        self,
        crawler: Crawler,
        server: Any,
        dupefilter: BaseDupeFilter,
        config: SchedulerSettings | None = None,
    ) -> None:
        config = config or SchedulerSettings()
        super().__init__(
            server,
            persist=config.persist,
            flush_on_start=config.flush_on_start,
            queue_key=config.queue_key,
            queue_cls="scrapy_sharedcrawl.queue.LeasedPriorityQueue",
            dupefilter=dupefilter,
            idle_before_close=config.idle_before_close,
            serializer=config.serializer,
        )
        self.crawler = crawler
        #: The filter when it can check inside the push script (atomic); None for any other filter.
        self.compact = dupefilter if isinstance(dupefilter, CompactRFPDupeFilter) else None
        assert crawler.stats is not None
        self.stats: StatsCollector = crawler.stats
        self.lease_seconds = config.lease_seconds
        #: Requests leased per pop: the engine asks for one at a time, Redis hands out a few per round trip.
        self.prefetch = config.prefetch
        self.host_horizon = config.host_horizon
        #: After a pop finds the queue empty while this worker still has requests in progress, Redis is
        #: not asked again before this worker pushes something or EMPTY_POP_PAUSE passes: the engine
        #: asks after every event, and an empty pop per page was a third of the crawl's round trips.
        self._empty_until = 0.0
        self.worker_id = this_worker()
        self.where = describe(crawler.settings)
        self.outage = RedisOutage(self.where, retry_max=config.retry_max)
        self.finisher = Finisher(
            self.where,
            continuous=config.continuous,
            wait_for_seed=config.wait_for_seed,
            idle_before_close=config.idle_before_close,
            seed_hint=config.seed_hint,
        )
        self.polls = IdlePolls(config.idle_poll_max)
        #: Seconds between ticks (:mod:`.heartbeat`): acknowledgements, and renewals thrice a lease.
        self.tick_interval = min(config.ack_interval, config.lease_seconds / 3)
        self.leases: LeaseLedger
        self.hooks: EngineHooks
        self.rejects = QueueRejects(crawler)
        self.queue: LeasedPriorityQueue
        self.state: CrawlState
        self.unsent: PushBuffer
        self.local: LocalRequests
        self.end: CrawlEnd
        self.heartbeat: Heartbeat
        self.closing = False
        #: False until ``open`` finished: a scheduler whose open failed (Redis unreachable) has nothing
        #: to push, acknowledge or release when Scrapy closes it.
        self.opened = False

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> LeasingScheduler:
        settings = crawler.settings
        return cls(
            crawler,
            redis_from_settings(settings),
            build_from_crawler(load_object(settings["DUPEFILTER_CLASS"]), crawler),
            SchedulerSettings.from_settings(settings),
        )

    @classmethod
    def from_settings(cls, settings: Any) -> LeasingScheduler:
        raise TypeError("LeasingScheduler needs the crawler: build it with from_crawler()")

    # -- lifecycle -------------------------------------------------------------------

    def open(self, spider: Spider) -> None:
        self.spider = spider
        try:
            self.server.ping()
            if hasattr(self.df, "open"):
                self.df.open()
        except UNREACHABLE as error:
            raise RuntimeError(
                f"Redis unreachable at {self.where} ({error}): start it, or unset REDIS_URL "
                "(REDIS_SENTINELS) to crawl alone"
            ) from None
        self.queue = LeasedPriorityQueue(
            self.server,
            spider,
            key=self.queue_key,
            serializer=self.serializer,
            fingerprint=self.crawler.request_fingerprinter.fingerprint,
            lua_check_and_add=self.compact.lua_check_and_add if self.compact else None,
            host_horizon=self.host_horizon,
        )
        self.state = CrawlState(self.server, self.queue.key)
        self.leases = LeaseLedger(
            self.queue,
            self.crawler.signals,
            self.stats,
            self.worker_id,
            self.lease_seconds,
            sender=self,  # the signals' documented ``scheduler`` argument
        )
        self.hooks = EngineHooks(self.crawler, self.leases.request_done, self._tick, self.tick_interval)
        self.unsent = PushBuffer(
            self.crawler, spider, self.queue, self.df, self.outage, self.worker_id, self.lease_seconds
        )
        self.local = LocalRequests(self.crawler, spider, self.df)
        idle_mode = redis_spiders.take_over(self.crawler, spider)  # a scrapy-redis spider: its key is ours
        if idle_mode is not None:
            self.finisher.continuous = idle_mode.continuous
            self.finisher.wait_for_seed = idle_mode.wait_for_seed
        meta_key = CrawlKeys.from_crawler(self.crawler).meta
        self.end = CrawlEnd(
            self.finisher,
            self.state,
            self.queue,
            self.df,
            self.stats,
            persist=self.persist,
            stats_meta_key=meta_key,
        )
        self.heartbeat = Heartbeat(
            ping=self.server.ping,
            outage=self.outage,
            queue=self.queue,
            unsent=self.unsent,
            leases=self.leases,
            end=self.end,
            polls=self.polls,
            hooks=self.hooks,
            stats=self.stats,
            start_urls=StartUrls.from_settings(self.server, spider, self.crawler.settings),
            enqueue=self.enqueue_request,
        )
        warn_unless_noeviction(self.server, self.where)
        if self.compact is None:
            logger.warning(
                "DUPEFILTER_CLASS %s is not a CompactRFPDupeFilter: checking and queueing a request are "
                "two Redis calls, and a worker dying between them loses that request",
                type(self.df).__name__,
            )
        if self.flush_on_start:
            logger.warning(
                "SCHEDULER_FLUSH_ON_START: deleting the shared queue and dupefilter at %s", self.where
            )
            self.flush()
        moved = self.queue.ensure_layout()
        if moved:
            logger.info(
                "Moved %d requests of the previous release's queue into the host queues at %s",
                moved,
                self.where,
            )
        self.end.join(self.worker_id)
        self.crawler.signals.connect(self._start_requests_scheduled, signal=start_requests_scheduled)
        self.crawler.signals.connect(self._spider_idle, signal=signals.spider_idle)
        self.crawler.signals.connect(self._hold_output, signal=hold_output)
        if self.hooks.attach():  # False when used outside a crawl (tests, tools)
            self.leases.flush_feeds = feed_flusher(self.crawler)
            self.unsent.start_timer()
        self.opened = True

    def close(self, reason: str) -> Deferred[None]:
        return deferred_from_coro(self._close(reason))

    async def _close(self, reason: str) -> None:
        if not self.opened:  # its open's error was the crawl's one line: nothing was leased or queued
            logger.debug("Scheduler closing (%s) without having opened: nothing to hand back", reason)
            return
        self.closing = True  # a heartbeat still running finds nothing more to do
        self.heartbeat.closing = True
        self.hooks.stop()
        self.unsent.stop_timer()
        await self.unsent.push_before_closing()
        self.heartbeat.close()
        await self.acknowledge()
        try:
            self.leases.release_unfinished()
            if reason == "finished" and not self.unsent and self.finisher.should_finalize:
                self.end.finalize()
        except UNREACHABLE as error:
            logger.warning(
                "Redis unreachable at %s while closing (%s): %d leases will return to the queue when "
                "they expire (%.0f s)",
                self.where,
                type(error).__name__,
                len(self.leases.in_progress) + len(self.leases.done),
                self.lease_seconds,
            )
        self.record_round_trips()
        if self.local:
            logger.warning("Closing with %d unserializable requests not crawled", len(self.local))
        self.df.close(reason)

    def flush(self) -> None:
        """Delete the shared queue, dupefilter and seed marker (SCHEDULER_FLUSH_ON_START)."""
        self.queue.clear()
        clear = getattr(self.df, "clear", None)
        if callable(clear):  # a process-local filter (Scrapy's own) has nothing shared to delete
            clear()
        self.server.delete(self.state.seeded_key)

    # -- the engine's calls -----------------------------------------------------------

    def enqueue_request(self, request: Request) -> bool:
        """Queue ``request`` with this worker's next round trip to Redis (:mod:`.push_buffer`); True
        unless it is kept nowhere. It stays in this process until it is in Redis, and its parent
        stays leased until then. A duplicate of a request this worker queued in this crawl is dropped
        here, as Scrapy's scheduler drops it (:class:`~.lease_ledger.SeenHere`)."""
        seen_here = self.leases.seen_here
        if not self.leases.leased:
            seen_here.forget()  # the crawl may end while this worker holds no lease (see SeenHere)
        here = None
        if not request.dont_filter:
            here = seen_here.key(self.crawler.request_fingerprinter.fingerprint(request))
            if seen_here.seen(here):  # queued by this worker in this crawl: the shared filter has it
                self.df.log(request, self.spider)
                self.stats.inc_value(f"{STATS}filtered_here")
                return False
        compact = self.compact
        check = compact.check(request) if compact and not request.dont_filter else None
        try:
            entry = self.queue.encode(request, check)
        except RefusedRequest as error:
            return self.rejects.refuse(request, error, self.spider)
        except serialization.UnserializableRequest as error:
            return self.local.add(request, error)
        if not compact and not request.dont_filter:
            try:
                if self.df.request_seen(request):
                    self.df.log(request, self.spider)
                    return False
            except UNREACHABLE as error:
                self.outage.failed(error, len(self.unsent) + 1)
        self.unsent.add(entry, request)
        if here is not None:
            seen_here.add(here)
        self.polls.busy()  # work of this worker: pop at once, not at the next idle poll
        self._empty_until = 0.0
        self.finisher.saw_work()
        return True

    def next_request(self) -> Request | None:
        if self.local:
            return self.local.pop()
        if self.leases.prefetched:
            return self.leases.hand_out()
        if not self.outage.may_try():
            return None
        if len(self.unsent) > PUSH_BATCH and not self.push_unsent():
            return None
        in_progress = bool(self.leases.in_progress)
        if in_progress and time.monotonic() < self._empty_until:
            return None
        if not in_progress and not self.polls.due(time.monotonic()):
            return None  # idle: Redis is asked again at the next poll (the heartbeat wakes the engine)
        try:
            pushed, popped = self.unsent.push_batch(pop=self.prefetch)
        except UNREACHABLE as error:
            self.unreachable(error)
            return None
        self.outage.recovered(pushed)
        assert popped is not None
        if popped.requeued:
            self.stats.inc_value(f"{STATS}requeued", popped.requeued)
            logger.info("Returned %d expired leases to the queue (their worker stopped)", popped.requeued)
        for request_id, reason in popped.undecodable:
            try:
                self.rejects.bury(self.queue, self.worker_id, request_id, reason)
            except UNREACHABLE as error:
                self.unreachable(error)
        if popped.missing:
            self.rejects.payloads_missing(popped.missing, self.where)
        if not popped.leased:
            due = None if popped.next_due is None else min(popped.next_due, HOST_DUE_MAX)
            if not in_progress:
                self.polls.missed()
                if due is not None:  # hosts wait for their rate or a pause: ask when the first is due
                    self.polls.host_due(time.monotonic() + due)
                if self.leases.done:
                    # nothing left to do here but acknowledge: now, not at the next tick, so that a crawl
                    # ending (or another worker waiting on these leases) does not wait up to a tick
                    self.hooks.tick_now()
            else:
                self._empty_until = time.monotonic() + max(EMPTY_POP_PAUSE, due or 0.0)
            if due is not None and self.hooks.attached:
                self.hooks.wake(due)
            return None
        self.polls.busy()
        self.finisher.saw_work()
        if popped.remaining == 0:  # known empty: don't ask again at once (see _empty_until)
            self._empty_until = time.monotonic() + EMPTY_POP_PAUSE
        self.leases.take(popped.leased)
        return self.leases.hand_out()

    def has_pending_requests(self) -> bool:
        """True while the shared crawl is not over for this worker (see :mod:`.crawl_end`).

        Work of this worker (requests held, local or leased; a seed not yet marked) and an
        unreachable Redis count as pending; otherwise the cluster's status decides. An idle
        worker reads it once per poll and answers the engine in between from the last verdict.
        """
        if (
            self.local
            or self.unsent
            or self.leases.holding
            or self.end.seed_pending
            or not self.outage.may_try()
        ):
            return True
        now = time.monotonic()
        verdict = self.end.verdict
        if verdict is not None and not self.polls.status_due and not self.polls.due(now):
            return verdict in (Verdict.BUSY, Verdict.WAIT)
        try:
            verdict, status = self.end.judge()
        except UNREACHABLE as error:
            self.unreachable(error)
            return True
        self.outage.recovered(0)
        self.stats.inc_value(f"{STATS}idle/polls")
        self.polls.polled(now, patient=verdict is Verdict.WAIT)
        if status.queued:  # pushed since this worker's pop found nothing: take it now
            self.polls.busy()
            self.hooks.wake()
        return verdict in (Verdict.BUSY, Verdict.WAIT)

    def __len__(self) -> int:
        return len(self.queue) + len(self.local) + len(self.unsent) + len(self.leases.prefetched)

    # -- seeding and finishing ---------------------------------------------------------

    def _spider_idle(self) -> None:
        """``spider_idle``: name the finish reason when no seed came (otherwise Scrapy's ``finished``)."""
        if self.end.verdict is Verdict.NO_SEED:
            raise CloseSpider(reason="no_seed")

    def _start_requests_scheduled(self) -> None:
        """The spider's own start requests are all in: mark the crawl seeded once they are in Redis."""
        self.end.seed_pending = True
        self.mark_seeded()

    def mark_seeded(self) -> None:
        """Mark the crawl seeded once the requests held here are in Redis (see :mod:`.heartbeat`)."""
        self.heartbeat.mark_seeded()

    # -- acknowledgements, the heartbeat, reconnecting ------------------------------------

    def _hold_output(self, request: Request, key: str, value: bytes) -> bool:
        return self.leases.hold_output(request, key, value)

    def request_done(self, request: Request) -> None:
        """The engine is finished with ``request``: acknowledge it with the next batch."""
        self.leases.request_done(request)

    async def acknowledge(self) -> int:
        """Acknowledge the finished requests (:mod:`.lease_ledger`, through :mod:`.heartbeat`); how many."""
        return await self.heartbeat.acknowledge()

    def renew_leases(self) -> int:
        """Extend every lease this worker holds; how many."""
        return self.leases.renew()

    async def _tick(self) -> None:
        """Every ack interval (:mod:`.heartbeat`), unless closing."""
        if not self.closing:
            await self.heartbeat.tick()

    def try_reconnect(self) -> bool:
        """Ping Redis and store held requests now (the heartbeat does this by itself). True if up."""
        try:
            self.server.ping()
        except UNREACHABLE as error:
            self.unreachable(error)
            return False
        return self.push_unsent()

    def push_unsent(self) -> bool:
        """Push every request waiting in this process, oldest first; True once none is left."""
        return self.unsent.push_all()

    def unreachable(self, error: BaseException) -> None:
        """A Redis call failed for want of Redis: the outage logs it once and backs off."""
        self.outage.failed(error, len(self.unsent))

    def record_round_trips(self) -> None:
        self.heartbeat.record_round_trips()
