"""What a worker's scheduler does between the engine's calls, once per tick (``SCHEDULER_ACK_INTERVAL``).

In order: reconnect if Redis was away (a ping from a thread: a vanished host may take
seconds), store the requests held meanwhile and wake the engine, mark the crawl seeded if
this worker's start requests are now in, acknowledge what is done, take entries of the
start-URLs key under its claim (once a second), renew this worker's leases (every third of
the lease time), learn the crawl's id if it works without one, and wake an idle engine when
its next poll of Redis falls due. Every Redis failure is one outage, ridden out by the scheduler.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from scrapy.utils.asyncio import run_in_thread

from scrapy_sharedcrawl.connection import UNREACHABLE
from scrapy_sharedcrawl.start_urls import INTERVAL as START_URLS_INTERVAL
from scrapy_sharedcrawl.start_urls import StartUrls

if TYPE_CHECKING:
    from scrapy_sharedcrawl.scheduler import LeasingScheduler

logger = logging.getLogger(__name__)


class Heartbeat:
    """One worker's ticks: the timers of what is done every so often, and the doing."""

    def __init__(self, scheduler: LeasingScheduler, start_urls: StartUrls) -> None:
        self.scheduler = scheduler
        self.start_urls = start_urls
        self._next_adopt = 0.0
        self._next_renew = 0.0
        self._next_start_urls = 0.0

    async def tick(self) -> None:
        """One tick (see the module docstring)."""
        s = self.scheduler
        try:
            if s.outage.down:
                if not s.outage.may_try():
                    return
                try:
                    await run_in_thread(s.server.ping)
                except UNREACHABLE as error:
                    s.unreachable(error)
                    return
            was_down = s.outage.down
            if s.unsent and not s.push_unsent():
                return
            s.outage.recovered(0)
            if was_down:
                s.hooks.wake()
            if s.end.seed_pending:
                s.mark_seeded()
            await s.acknowledge()
            now = time.monotonic()
            if now >= self._next_start_urls:
                self._next_start_urls = now + START_URLS_INTERVAL
                self.take_start_urls()
            if now >= self._next_renew and not s.closing:
                s.renew_leases()
                self._next_renew = now + s.lease_seconds / 3
            if s.finisher.crawl_id is None and s.leases.in_progress and now >= self._next_adopt:
                # working without knowing the crawl's id: learn it, to tell "finished" from "lost" later
                s.finisher.adopt(s.state.seeded())
                self._next_adopt = now + s.lease_seconds / 3
            if s.polls.idle and not s.leases.in_progress and s.polls.due(now + s.hooks.interval / 2):
                # an idle worker's poll (due before the next tick): next_request pops, has_pending reads
                s.polls.poll_now()
                s.hooks.wake()
            s.record_round_trips()
        except UNREACHABLE as error:
            s.unreachable(error)

    def take_start_urls(self) -> None:
        """Queue what was pushed to the start-URLs key (:mod:`.start_urls`) and mark the crawl seeded;
        the entries, taken under this worker's claim on the key, leave it once their requests are in
        Redis: at once, or at a later tick if Redis went away meanwhile (raises if Redis is away)."""
        s = self.scheduler
        feed = self.start_urls
        if not feed.held:
            entries = feed.take()
            if not entries:
                return
            # each request is encoded first: an entry the queue can't hold is dropped here, not in the push
            for request in feed.requests(entries, check=s.queue.encode):
                s.enqueue_request(request)
        if not s.push_unsent():
            return  # held: the entries stay taken, not read again, until their requests are stored
        s.end.seed_pending = True  # the requests are in Redis: seeded, whatever happens to the key next
        taken = feed.stored()
        logger.info("Queued %d start URLs from %s", taken, feed.key)
        s.mark_seeded()
        s.hooks.wake()

    def close(self) -> None:
        """At the scheduler's close, after it stored what it held: entries whose requests are now stored
        leave the start-URLs key (otherwise another worker takes them again once the claim expires)."""
        s = self.scheduler
        if not self.start_urls.held or s.unsent:
            return
        try:
            self.start_urls.stored()
        except UNREACHABLE as error:
            logger.warning(
                "Redis unreachable at %s while closing (%s): %d start-URLs entries whose requests are "
                "queued stay in %s and may be queued again by another worker",
                s.where,
                type(error).__name__,
                len(self.start_urls.held),
                self.start_urls.key,
            )
