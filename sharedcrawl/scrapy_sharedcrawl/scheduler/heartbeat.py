"""What a worker's scheduler does between the engine's calls, once per tick (``SCHEDULER_ACK_INTERVAL``).

In order: reconnect if Redis was away (a ping from a thread: a vanished host may take
seconds), store the requests held meanwhile and wake the engine, mark the crawl seeded if
this worker's start requests are now in, acknowledge what is done, take entries of the
start-URLs key under its claim (once a second; while its batches come back full, a few
batches a tick and the next tick at once), renew this worker's leases (every third of the
lease time), learn the crawl's id if it works without one, and wake an idle engine when
its next poll of Redis falls due. Every Redis failure is one outage, ridden out by the scheduler.

The heartbeat is handed the parts it drives (push buffer, lease ledger, crawl end, idle polls, engine
hooks, outage, the start-URLs feed, stats), never the scheduler: its one way back is ``enqueue``, the
scheduler's admission of a request, for the start URLs it takes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from scrapy import Request
from scrapy.statscollectors import StatsCollector
from scrapy.utils.asyncio import run_in_thread

from scrapy_sharedcrawl.connection import UNREACHABLE, RedisOutage
from scrapy_sharedcrawl.finishing import IdlePolls
from scrapy_sharedcrawl.queue import LeasedPriorityQueue
from scrapy_sharedcrawl.scheduler.crawl_end import CrawlEnd
from scrapy_sharedcrawl.scheduler.engine_hooks import EngineHooks
from scrapy_sharedcrawl.scheduler.lease_ledger import LeaseLedger
from scrapy_sharedcrawl.scheduler.prefix import STATS
from scrapy_sharedcrawl.scheduler.push_buffer import PushBuffer
from scrapy_sharedcrawl.start_urls import INTERVAL as START_URLS_INTERVAL
from scrapy_sharedcrawl.start_urls import StartUrls

logger = logging.getLogger(__name__)


class Heartbeat:
    """One worker's ticks: the timers of what is done every so often, and the doing."""

    def __init__(
        self,
        *,
        ping: Callable[[], object],
        outage: RedisOutage,
        queue: LeasedPriorityQueue,
        unsent: PushBuffer,
        leases: LeaseLedger,
        end: CrawlEnd,
        polls: IdlePolls,
        hooks: EngineHooks,
        stats: StatsCollector,
        start_urls: StartUrls,
        enqueue: Callable[[Request], bool],
    ) -> None:
        self.ping = ping
        self.outage = outage
        self.queue = queue
        self.unsent = unsent
        self.leases = leases
        self.end = end
        self.polls = polls
        self.hooks = hooks
        self.stats = stats
        self.start_urls = start_urls
        self.enqueue = enqueue
        #: The scheduler is closing: a tick still running renews no lease.
        self.closing = False
        self._next_adopt = 0.0
        self._next_renew = 0.0
        self._next_start_urls = 0.0

    async def tick(self) -> None:
        """One tick (see the module docstring)."""
        outage, leases, polls = self.outage, self.leases, self.polls
        lease_seconds = leases.lease_seconds
        try:
            if outage.down:
                if not outage.may_try():
                    return
                try:
                    await run_in_thread(self.ping)
                except UNREACHABLE as error:
                    self.unreachable(error)
                    return
            was_down = outage.down
            if self.unsent and not self.unsent.push_all():
                return
            outage.recovered(0)
            if was_down:
                self.hooks.wake()
            if self.end.seed_pending:
                self.mark_seeded()
            await self.acknowledge()
            now = time.monotonic()
            if now >= self._next_start_urls:
                self._next_start_urls = now + START_URLS_INTERVAL
                if self.take_start_urls():  # more waits: taken at the next tick, once the engine ran
                    self._next_start_urls = now
                    self.hooks.tick_again()
            if now >= self._next_renew and not self.closing:
                leases.renew()
                self._next_renew = now + lease_seconds / 3
            if self.end.finisher.crawl_id is None and leases.in_progress and now >= self._next_adopt:
                # working without knowing the crawl's id: learn it, to tell "finished" from "lost" later
                self.end.finisher.adopt(self.end.state.seeded())
                self._next_adopt = now + lease_seconds / 3
            if polls.idle and not leases.in_progress and polls.due(now + self.hooks.interval / 2):
                # an idle worker's poll (due before the next tick): next_request pops, has_pending reads
                polls.poll_now()
                self.hooks.wake()
            self.record_round_trips()
        except UNREACHABLE as error:
            self.unreachable(error)

    async def acknowledge(self) -> int:
        """Acknowledge the finished requests (:mod:`.lease_ledger`); how many."""
        if self.unsent or not self.outage.may_try():
            return 0  # a held request's parent stays leased until the request is stored
        try:
            return await self.leases.acknowledge()
        except UNREACHABLE as error:
            self.unreachable(error)
            return 0

    def mark_seeded(self) -> None:
        """Mark the crawl seeded once the requests held here are in Redis (else at a later tick)."""
        if not self.outage.may_try() or not self.unsent.push_all():
            return  # the heartbeat tries again once the held requests are stored
        try:
            self.end.mark_seeded()
        except UNREACHABLE as error:
            self.unreachable(error)

    def take_start_urls(self) -> bool:
        """Queue what was pushed to the start-URLs key (:mod:`.start_urls`) and mark the crawl seeded:
        a batch, and more while they come back full, up to the feed's ``batches_per_tick``. True if the
        last was full: more may wait, for the next tick (a seed of many batches is not read a batch a
        second, and the engine runs between ticks). Raises if Redis is away."""
        feed = self.start_urls
        queued = batches = 0
        full = True
        try:
            while full and batches < feed.batches_per_tick:
                batches += 1
                taken, full = self.take_batch()
                queued += taken
        finally:
            if queued:
                logger.info("Queued %d start URLs from %s", queued, feed.key)
        if queued:
            self.mark_seeded()
            self.hooks.wake()
        return full

    def take_batch(self) -> tuple[int, bool]:
        """Queue a batch of the start-URLs key's entries, or the entries held since Redis went away:
        (entries whose requests are now stored, whether the batch was full). The entries, taken under
        this worker's claim on the key, leave it once their requests are in Redis: at once, or at a
        later tick if Redis went away meanwhile."""
        feed = self.start_urls
        if not feed.held:
            entries = feed.take()
            if not entries:
                return 0, False
            # each request is encoded first: an entry the queue can't hold is dropped here, not in the push
            for request in feed.requests(entries, check=self.queue.encode):
                self.enqueue(request)
        full = len(feed.held) >= feed.batch
        if not self.unsent.push_all():
            return 0, False  # held: the entries stay taken, not read again, until their requests are stored
        self.end.seed_pending = True  # the requests are in Redis: seeded, whatever happens to the key next
        return feed.stored(), full

    def unreachable(self, error: BaseException) -> None:
        """A Redis call failed for want of Redis: the outage logs it once and backs off."""
        self.outage.failed(error, len(self.unsent))

    def record_round_trips(self) -> None:
        self.stats.set_value(f"{STATS}redis/round_trips", self.queue.round_trips + self.end.state.round_trips)
        if self.outage.outages:
            self.stats.set_value(f"{STATS}redis/outages", self.outage.outages)

    def close(self) -> None:
        """At the scheduler's close, after it stored what it held: entries whose requests are now stored
        leave the start-URLs key (otherwise another worker takes them again once the claim expires)."""
        if not self.start_urls.held or self.unsent:
            return
        try:
            self.start_urls.stored()
        except UNREACHABLE as error:
            logger.warning(
                "Redis unreachable at %s while closing (%s): %d start-URLs entries whose requests are "
                "queued stay in %s and may be queued again by another worker",
                self.outage.where,
                type(error).__name__,
                len(self.start_urls.held),
                self.start_urls.key,
            )
