"""The shared scheduler: any number of workers crawl one Redis queue, and a dead worker loses nothing.

:class:`LeasingScheduler` extends scrapy-redis's scheduler (settings names,
``SCHEDULER_PERSIST``, ``SCHEDULER_FLUSH_ON_START``, a shared queue and
dupefilter) where scrapy-redis 0.9.1 falls short with Scrapy 2.19:

- requests are leased (:class:`~.queue.LeasedPriorityQueue`), JSON-encoded
  (:mod:`.serialization`), and deduplicated in the same atomic call that queues
  them (:class:`~.dupefilter.CompactRFPDupeFilter`);
- a request is acknowledged only once it is *done*: its response went through
  the callback, the callback's items through the pipelines and its requests
  into Redis — or it failed for good (errback run), or the downloader replaced
  it (redirect, retry: the replacement is queued first). Before a batch of
  acknowledgements the :data:`~.signals.ack_barrier` signal lets batching stores
  make their items durable, and feed-export files are flushed, so a worker
  killed at any moment leaves every unfinished request leased in Redis, to be
  requeued when its lease runs out;
- a heartbeat renews this worker's leases every ``SOLIDOT_LEASE_SECONDS / 3``;
- a worker knows when the *shared* crawl is over (:mod:`.finishing`): it waits
  for a seed (``SOLIDOT_WAIT_FOR_SEED``), closes once the crawl is seeded and
  nothing is queued or leased anywhere, or keeps waiting for new seeds
  (``SOLIDOT_CONTINUOUS``); idle, it polls Redis with backoff
  (``SOLIDOT_IDLE_POLL_MAX``). Exactly one worker then deletes the shared
  queue and dupefilter, atomically, unless ``SCHEDULER_PERSIST`` is on (stock
  deletes them whenever a worker closes);
- stats are counted without the ``spider=`` argument Scrapy 2.19 deprecates;
- Redis going away is ridden out: requests are held locally, ``next_request``
  answers None (the engine asks again), and everything is stored once Redis is
  back; one log line when it goes, one when it is back.

**When is a request done?** Scrapy 2.19 has no signal for it: ``response_received``
and ``request_left_downloader`` fire before the callback, item signals come one
per item with no end marker, and a spider middleware sees neither errbacks nor
requests the downloader replaced. Every path ends in the engine's
``_slot.remove_request(request)``, called after the scraper has finished with
the request, so the scheduler wraps that method of the running engine's slot
(checked at open: the scheduler refuses to run on an engine without it; Scrapy
is pinned below 2.20).

**Redis round trips** (each a single command, Lua call or pipeline, on the reactor
thread, bounded by a 5 s socket timeout): the engine asks for one request at a
time, but a pop leases up to ``SOLIDOT_PREFETCH`` (8) and the next ones are
handed out from this worker's leases; the requests a callback yields wait in
this process and ride along with the next pop (one pipeline), or go alone after
``PUSH_DELAY`` when the engine is not asking (downloader full), up to
``PUSH_BATCH`` per round trip; acknowledgements 1 per batch (every
``SOLIDOT_ACK_INTERVAL`` s); lease renewal 1 per ``SOLIDOT_LEASE_SECONDS / 3``
s; an idle worker 2 per poll (a pop and the cluster status), polls spaced by
:class:`~.finishing.IdlePolls`. Start requests reach the scheduler in bulk
(:mod:`.start`). The ``scheduler/redis/round_trips`` stat counts them all: about
0.13 per page on a story crawl (``bench/distributed_throughput.py``).

**Prefetch and fairness**: a worker holds at most ``SOLIDOT_PREFETCH`` leases it
has not started, so at the end of a crawl another worker may wait while this one
works through them; they are renewed like the others, released at shutdown, and
requeued if the worker dies.
"""

from __future__ import annotations

import heapq
import importlib
import itertools
import logging
import time
from collections import deque
from typing import Any

from scrapy import Request, Spider, signals
from scrapy.crawler import Crawler
from scrapy.dupefilters import BaseDupeFilter
from scrapy.exceptions import CloseSpider
from scrapy.extensions.feedexport import FeedExporter
from scrapy.statscollectors import StatsCollector
from scrapy.utils.asyncio import create_looping_call, run_in_thread, sleep
from scrapy.utils.defer import deferred_from_coro
from scrapy.utils.misc import build_from_crawler, load_object
from scrapy.utils.reactor import CallLaterOnce
from scrapy_redis.scheduler import Scheduler as StockScheduler
from twisted.internet.defer import Deferred

from scrapy_sharedcrawl import serialization
from scrapy_sharedcrawl.admission import RefusedRequest
from scrapy_sharedcrawl.compat import on_request_finished, running_engine, wake_engine
from scrapy_sharedcrawl.config import setting
from scrapy_sharedcrawl.connection import (
    UNREACHABLE,
    Outage,
    describe,
    redis_from_settings,
    warn_unless_noeviction,
)
from scrapy_sharedcrawl.dupefilter import CompactRFPDupeFilter, Layout
from scrapy_sharedcrawl.finishing import CrawlState, Finisher, IdlePolls, SeenRecord, Verdict
from scrapy_sharedcrawl.queue import DEFAULT_KEY, Encoded, LeasedPriorityQueue, Popped
from scrapy_sharedcrawl.signals import (
    AckPostponed,
    ack_barrier,
    requests_acknowledged,
    start_requests_scheduled,
)
from scrapy_sharedcrawl.stats import CrawlKeys, this_worker

logger = logging.getLogger(__name__)

#: Seconds a worker with requests in progress waits before asking an empty queue again.
EMPTY_POP_PAUSE = 0.05

#: Every setting of the scheduler with its default (scrapy-redis's names where it has one).
DEFAULTS: dict[str, Any] = {
    "SCHEDULER_QUEUE_KEY": DEFAULT_KEY,
    "SCHEDULER_SERIALIZER": "scrapy_sharedcrawl.serialization",
    "SCHEDULER_PERSIST": False,
    "SCHEDULER_FLUSH_ON_START": False,
    "SCHEDULER_IDLE_BEFORE_CLOSE": 0,
    "SOLIDOT_LEASE_SECONDS": 120.0,
    "SOLIDOT_ACK_INTERVAL": 1.0,
    "SOLIDOT_REDIS_RETRY_MAX": 10.0,
    "SOLIDOT_CONTINUOUS": False,
    "SOLIDOT_WAIT_FOR_SEED": 300.0,
    "SOLIDOT_IDLE_POLL_MAX": 30.0,
    "SOLIDOT_PREFETCH": 8,
}
#: Requests pushed per round trip at most (a burst of start requests, or the backlog of an outage).
PUSH_BATCH = 500
#: How long (s) a request waits to ride along with the engine's next pop before it is pushed alone
#: (the downloader is full, so the engine is not asking).
PUSH_DELAY = 0.005

STATS = "scheduler/"


class LeasingScheduler(StockScheduler):
    """A Scrapy 2.19 scheduler over a shared, leased Redis queue (see the module docstring)."""

    def __init__(
        self,
        crawler: Crawler,
        server: Any,
        dupefilter: BaseDupeFilter,
        *,
        queue_key: str = DEFAULT_KEY,
        serializer: Any = serialization,
        persist: bool = False,
        flush_on_start: bool = False,
        idle_before_close: float = 0,
        lease_seconds: float = DEFAULTS["SOLIDOT_LEASE_SECONDS"],
        ack_interval: float = 1.0,
        retry_max: float = 10.0,
        continuous: bool = False,
        wait_for_seed: float = 300.0,
        idle_poll_max: float = 30.0,
        prefetch: int = 8,
    ) -> None:
        if lease_seconds <= 0 or ack_interval <= 0:
            raise ValueError("SOLIDOT_LEASE_SECONDS and SOLIDOT_ACK_INTERVAL must be positive")
        if prefetch < 1:
            raise ValueError("SOLIDOT_PREFETCH must be at least 1")
        super().__init__(
            server,
            persist=persist,
            flush_on_start=flush_on_start,
            queue_key=queue_key,
            queue_cls="scrapy_sharedcrawl.queue.LeasedPriorityQueue",
            dupefilter=dupefilter,
            idle_before_close=idle_before_close,
            serializer=serializer,
        )
        self.crawler = crawler
        #: The filter when it can check inside the push script (atomic); None for any other filter.
        self.compact = dupefilter if isinstance(dupefilter, CompactRFPDupeFilter) else None
        assert crawler.stats is not None
        self.stats: StatsCollector = crawler.stats
        self.lease_seconds = lease_seconds
        #: Requests leased per pop: the engine asks for one at a time, Redis hands out a few per round trip.
        self.prefetch = prefetch
        #: After a pop finds the queue empty while this worker still has requests in progress, Redis is
        #: not asked again before this worker pushes something or EMPTY_POP_PAUSE passes (another
        #: worker's pushes are seen then): the engine asks for a request after every event, and an
        #: empty pop per page was a third of the crawl's Redis round trips.
        self._empty_until = 0.0
        self.ack_interval = ack_interval
        self.worker_id = this_worker()
        self.where = describe(crawler.settings)
        self.outage = Outage(self.where, retry_max=retry_max)
        self.finisher = Finisher(
            self.where,
            continuous=continuous,
            wait_for_seed=wait_for_seed,
            idle_before_close=idle_before_close,
        )
        self.polls = IdlePolls(idle_poll_max)
        self.queue: LeasedPriorityQueue
        self.state: CrawlState
        self._verdict: Verdict | None = None  # the last judgement of the cluster's status
        self._seed_pending = False  # this worker's start requests are in, the crawl not marked yet
        self._postponed = False  # acknowledgements wait for an ack_barrier handler
        self._next_adopt = 0.0
        self._tick_interval = min(ack_interval, lease_seconds / 3)
        self._leased: dict[Request, str] = {}  # handed to the engine, not done yet
        self._done: list[tuple[str, str]] = []  # (id, url) done, acknowledgement pending
        self._unsent: deque[tuple[Encoded, Request]] = deque()  # pushes waiting for a round trip
        self._prefetched: deque[tuple[str, Request]] = deque()  # leased, not handed to the engine yet
        self._pusher: CallLaterOnce[None] | None = None  # pushes the waiting requests after PUSH_DELAY
        self._memory: list[tuple[int, int, Request]] = []  # requests that can't be serialized
        self._memory_seq = itertools.count()
        self._logged_unserializable = False
        self._buried_kinds: set[str] = set()
        self._refused_kinds: set[str] = set()
        self._next_renew = 0.0
        self._ticker: Any = None
        self._engine_slot: Any = None
        self._ticking = False
        self._closing = False

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> LeasingScheduler:
        settings = crawler.settings

        def get(name: str) -> Any:
            return setting(settings, name, DEFAULTS)

        serializer = get("SCHEDULER_SERIALIZER")
        if isinstance(serializer, str):
            serializer = importlib.import_module(serializer)  # a module with loads/dumps, as in scrapy-redis
        dupefilter = build_from_crawler(load_object(settings["DUPEFILTER_CLASS"]), crawler)
        return cls(
            crawler,
            redis_from_settings(settings),
            dupefilter,
            queue_key=str(get("SCHEDULER_QUEUE_KEY")),
            serializer=serializer,
            persist=settings.getbool("SCHEDULER_PERSIST", DEFAULTS["SCHEDULER_PERSIST"]),
            flush_on_start=settings.getbool("SCHEDULER_FLUSH_ON_START"),
            idle_before_close=float(get("SCHEDULER_IDLE_BEFORE_CLOSE")),
            lease_seconds=float(get("SOLIDOT_LEASE_SECONDS")),
            ack_interval=float(get("SOLIDOT_ACK_INTERVAL")),
            retry_max=float(get("SOLIDOT_REDIS_RETRY_MAX")),
            continuous=settings.getbool("SOLIDOT_CONTINUOUS", DEFAULTS["SOLIDOT_CONTINUOUS"]),
            wait_for_seed=float(get("SOLIDOT_WAIT_FOR_SEED")),
            idle_poll_max=float(get("SOLIDOT_IDLE_POLL_MAX")),
            prefetch=int(get("SOLIDOT_PREFETCH")),
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
                f"Redis unreachable at {self.where} ({error}): start it, or unset REDIS_URL to crawl alone"
            ) from None
        self.queue = LeasedPriorityQueue(
            self.server,
            spider,
            key=self.queue_key,
            serializer=self.serializer,
            fingerprint=self.crawler.request_fingerprinter.fingerprint,
            lua_check_and_add=self.compact.lua_check_and_add if self.compact else None,
        )
        self.state = CrawlState(self.server, self.queue.key, self.queue.queue_key, self.queue.leases_key)
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
        status = self.state.status()
        self.finisher.reference_ms = status.server_ms  # a crawl finished after now is one this worker awaited
        if status.busy:
            logger.info(
                "Joining a shared crawl at %s: %d requests queued, %d leased to workers (this one: %s)",
                self.where,
                status.queued,
                status.leased,
                self.worker_id,
            )
        self.finisher.adopt(status.seeded)
        self.crawler.signals.connect(self._start_requests_scheduled, signal=start_requests_scheduled)
        self.crawler.signals.connect(self._spider_idle, signal=signals.spider_idle)
        engine = running_engine(self.crawler)
        if engine is not None:  # None when used outside a crawl (tests, tools)
            self._engine_slot = on_request_finished(engine, self.request_done)
            self._pusher = CallLaterOnce(self._push_soon)
            self._ticker = create_looping_call(self._tick_soon)
            self._ticker.start(self._tick_interval, now=False)

    def _wake_engine(self) -> None:
        """Ask the engine for requests now rather than at its next 5 s heartbeat (Redis is back)."""
        wake_engine(self._engine_slot)

    def close(self, reason: str) -> Deferred[None]:
        return deferred_from_coro(self._close(reason))

    async def _close(self, reason: str) -> None:
        self._closing = True  # a heartbeat still running finds nothing more to do
        if self._ticker is not None and self._ticker.running:
            self._ticker.stop()
        if self._pusher is not None:
            self._pusher.cancel()
        if self._unsent and not (self.outage.may_try() and self.push_unsent()):
            await self._push_before_closing()
        await self.acknowledge()
        try:
            unused = [*self._leased.values(), *(request_id for request_id, _ in self._prefetched)]
            if unused:  # never finished, or never started (a forced shutdown): back to the queue now
                released = self.queue.release(self.worker_id, unused)
                self.stats.inc_value(f"{STATS}released", released)
                self._leased.clear()
                self._prefetched.clear()
            if reason == "finished" and not self._unsent and self.finisher.should_finalize:
                self._finalize()
        except UNREACHABLE as error:
            logger.warning(
                "Redis unreachable at %s while closing (%s): %d leases will return to the queue when "
                "they expire (%.0f s)",
                self.where,
                type(error).__name__,
                len(self._leased) + len(self._done),
                self.lease_seconds,
            )
        self._record_round_trips()
        if self._memory:
            logger.warning("Closing with %d unserializable requests not crawled", len(self._memory))
        self.df.close(reason)

    async def _push_before_closing(self) -> None:
        """Try to store held requests for up to one lease time; past it their parents are redone anyway."""
        deadline = time.monotonic() + self.lease_seconds
        logger.warning(
            "Waiting up to %.0f s for Redis at %s to store %d held requests before closing",
            self.lease_seconds,
            self.where,
            len(self._unsent),
        )
        while self._unsent and time.monotonic() < deadline:
            if self.outage.may_try():
                self.push_unsent()
            if self._unsent:
                await sleep(min(1.0, max(0.0, self.outage.retry_at - time.monotonic())) or 0.1)
        if self._unsent:
            logger.error(
                "Closing with %d requests never stored in Redis at %s: those found by requests this worker "
                "leased will be found again when the leases expire; start requests need the crawl rerun",
                len(self._unsent),
                self.where,
            )

    def flush(self) -> None:
        """Delete the shared queue, dupefilter and seed marker (SCHEDULER_FLUSH_ON_START)."""
        self.queue.clear()
        self._clear_dupefilter()
        self.server.delete(self.state.seeded_key)

    def _clear_dupefilter(self) -> None:
        clear = getattr(self.df, "clear", None)
        if callable(clear):  # a process-local filter (Scrapy's own) has nothing shared to delete
            clear()

    # -- the engine's calls -----------------------------------------------------------

    def enqueue_request(self, request: Request) -> bool:
        """Queue ``request`` with this worker's next round trip to Redis; True unless it is kept nowhere.

        The push rides along with the engine's next pop (one pipelined round trip), or goes within
        ``PUSH_DELAY`` if the engine is not asking. So the shared dupefilter's verdict comes after this
        returns: a request it finds seen is then logged, counted (``dupefilter/filtered``) and announced
        with ``request_dropped``, as Scrapy's scheduler does at once. A request stays in this process
        until it is in Redis, and its parent stays leased until then (see :meth:`acknowledge`).
        """
        compact = self.compact
        check = compact.check(request) if compact and not request.dont_filter else None
        try:
            entry = self.queue.encode(request, check)
        except RefusedRequest as error:
            return self._refuse(request, error)
        except serialization.UnserializableRequest as error:
            return self._enqueue_in_memory(request, error)
        if not compact and not request.dont_filter:
            try:
                if self.df.request_seen(request):
                    self.df.log(request, self.spider)
                    return False
            except UNREACHABLE as error:
                self.outage.failed(error, len(self._unsent) + 1)
        self._unsent.append((entry, request))
        if len(self._unsent) >= PUSH_BATCH and self.outage.may_try():
            self.push_unsent()
        elif self._pusher is not None:
            self._pusher.schedule(PUSH_DELAY)
        self.polls.busy()  # work of this worker: pop at once, not at the next idle poll
        self._empty_until = 0.0
        self.finisher.saw_work()
        return True

    def next_request(self) -> Request | None:
        if self._memory:
            self.stats.inc_value(f"{STATS}dequeued/memory")
            self.stats.inc_value(f"{STATS}dequeued")
            return heapq.heappop(self._memory)[2]
        if self._prefetched:
            return self._hand_out()
        if not self.outage.may_try():
            return None
        if len(self._unsent) > PUSH_BATCH and not self.push_unsent():
            return None
        if self._leased and time.monotonic() < self._empty_until:
            return None
        if not self._leased and not self.polls.due(time.monotonic()):
            return None  # idle: Redis is asked again at the next poll (the heartbeat wakes the engine)
        try:
            pushed, popped = self._push_batch(pop=self.prefetch)
        except UNREACHABLE as error:
            self._unreachable(error)
            return None
        self.outage.recovered(pushed)
        assert popped is not None
        if popped.requeued:
            self.stats.inc_value(f"{STATS}requeued", popped.requeued)
            logger.info("Returned %d expired leases to the queue (their worker stopped)", popped.requeued)
        for request_id, reason in popped.undecodable:
            self._bury(request_id, reason)
        if popped.missing:
            self._payloads_missing(popped.missing)
        if not popped.leased:
            if not self._leased:
                self.polls.missed()
            else:
                self._empty_until = time.monotonic() + EMPTY_POP_PAUSE
            return None
        self.polls.busy()
        self.finisher.saw_work()
        if popped.remaining == 0:  # known empty: don't ask again at once (see _empty_until)
            self._empty_until = time.monotonic() + EMPTY_POP_PAUSE
        self._prefetched.extend(popped.leased)
        return self._hand_out()

    def _hand_out(self) -> Request:
        """The next prefetched request, now in the engine's hands."""
        request_id, request = self._prefetched.popleft()
        self._leased[request] = request_id
        self.stats.inc_value(f"{STATS}dequeued/redis")
        self.stats.inc_value(f"{STATS}dequeued")
        return request

    def has_pending_requests(self) -> bool:
        """True while the shared crawl is not over for this worker (see :mod:`.finishing`).

        Work of this worker (requests held, in memory or leased; a seed not yet
        marked) and an unreachable Redis count as pending. Otherwise the
        cluster's status decides: something queued or leased anywhere, or no
        seed yet (finite mode: for up to ``SOLIDOT_WAIT_FOR_SEED`` s; continuous:
        always) is pending. An idle worker reads the status once per poll and
        answers the engine's calls in between from the last verdict.
        """
        if (
            self._memory
            or self._unsent
            or self._prefetched
            or self._leased
            or self._seed_pending
            or not self.outage.may_try()
        ):
            return True
        now = time.monotonic()
        if self._verdict is not None and not self.polls.status_due and not self.polls.due(now):
            return self._verdict in (Verdict.BUSY, Verdict.WAIT)
        try:
            status = self.state.status(self.finisher.crawl_id, self.finisher.reference_ms or 0)
            verdict = self.finisher.judge(status)
            if verdict is Verdict.FINISHED:
                if not self.finisher.should_finalize:
                    logger.info(
                        "Crawl %s finished at %s (another worker cleaned up)",
                        self.finisher.crawl_id or "(seeded while this worker waited)",
                        self.where,
                    )
                elif self.finisher.continuous:
                    self._finalize()  # in finite mode: at close, after the last acknowledgements
                if self.finisher.continuous:
                    self.finisher.restart_waiting(status.server_ms)
                    verdict = Verdict.WAIT
        except UNREACHABLE as error:
            self._unreachable(error)
            return True
        self.outage.recovered(0)
        self.stats.inc_value(f"{STATS}idle/polls")
        self.polls.polled(now, patient=verdict is Verdict.WAIT)
        if status.queued:  # pushed since this worker's pop found nothing: take it now
            self.polls.busy()
            self._wake_engine()
        self._verdict = verdict
        return verdict in (Verdict.BUSY, Verdict.WAIT)

    def _spider_idle(self) -> None:
        """``spider_idle``: name the finish reason when no seed came (otherwise Scrapy's ``finished``)."""
        if self._verdict is Verdict.NO_SEED:
            raise CloseSpider(reason="no_seed")

    # -- seeding and finishing ---------------------------------------------------------

    def _start_requests_scheduled(self) -> None:
        """The spider's own start requests are all in: mark the crawl seeded once they are in Redis."""
        self._seed_pending = True
        self._mark_seeded()

    def _mark_seeded(self) -> None:
        if not self.outage.may_try() or not self.push_unsent():
            return  # the heartbeat tries again once the held requests are stored
        try:
            crawl_id = self.state.mark_seeded()
        except UNREACHABLE as error:
            self._unreachable(error)
            return
        self._seed_pending = False
        logger.info("This worker's start requests are in the shared queue: crawl %s is seeded", crawl_id)
        self.finisher.adopt(crawl_id)

    def _finalize(self) -> bool:
        """The crawl is over: record it as finished and, unless ``SCHEDULER_PERSIST``, delete its queue and
        dupefilter — one atomic script, so exactly one worker does it, and only if the cluster is idle. The
        script first leaves the URLs seen in the shared stats (``status`` shows them after the filter)."""
        crawl_id = self.finisher.crawl_id
        state_keys = self._state_keys()  # reads the dupefilter's stored layout, which SeenRecord counts by
        seen = SeenRecord.of(self.df, CrawlKeys.from_crawler(self.crawler).meta)
        done = self.state.finalize(crawl_id, keep=self.persist, state_keys=state_keys, seen=seen)
        if self.compact is not None:
            self.compact.layout = None  # deleted or not, agree on it again before the next push
        if done:
            self.stats.set_value(f"{STATS}finalized", 1)
            logger.info(
                "Crawl %s finished: nothing queued or leased at %s; %s",
                crawl_id or "(not marked)",
                self.where,
                "kept its queue and dupefilter (SCHEDULER_PERSIST)"
                if self.persist
                else "deleted its queue and dupefilter",
            )
        else:
            logger.info("Crawl %s finished at %s", crawl_id or "(not marked)", self.where)
        return done

    def _state_keys(self) -> list[str]:
        """Every Redis key of the crawl's state but the seed marker and dead letters."""
        keys = [*self.queue.keys, self.queue.seq_key]
        if self.compact is not None:
            if self.compact.layout is None:  # read the stored layout, never create one just to delete it
                stored = self.server.hgetall(self.compact.meta_key)
                self.compact.layout = Layout.from_redis(stored) if stored else None
            if self.compact.layout is not None:
                keys += self.compact.shard_keys()
            keys.append(self.compact.meta_key)
        elif isinstance(key := getattr(self.df, "key", None), str):
            keys.append(key)  # scrapy-redis's own filter: one set
        return keys

    def __len__(self) -> int:
        return len(self.queue) + len(self._memory) + len(self._unsent) + len(self._prefetched)

    # -- completion and acknowledgement ------------------------------------------------

    def request_done(self, request: Request) -> None:
        """The engine is finished with ``request``: acknowledge it with the next batch."""
        request_id = self._leased.pop(request, None)
        if request_id is not None:
            self._done.append((request_id, request.url))

    async def acknowledge(self) -> int:
        """Acknowledge the finished requests: barrier, flush feeds, then one Redis call. Returns how many."""
        if not self._done or self._unsent or not self.outage.may_try():
            return 0  # a held request's parent stays leased until the request is stored
        batch, self._done = self._done, []
        results = await self.crawler.signals.send_catch_log_async(
            signal=ack_barrier, scheduler=self, dont_log=AckPostponed
        )
        failed = [result for _, result in results if isinstance(result, BaseException)]
        if failed:
            self._done[:0] = batch
            self.stats.inc_value(f"{STATS}acks/postponed")
            if not self._postponed:  # once per streak: a database outage postpones every tick
                self._postponed = True
                logger.warning(
                    "Acknowledgements postponed: %s (%d requests stay leased, renewed meanwhile)",
                    failed[0],
                    len(self._done),
                )
            return 0
        if self._postponed:
            self._postponed = False
            logger.info("Acknowledgements resumed")
        self._flush_feeds()
        try:
            result = self.queue.ack(self.worker_id, [request_id for request_id, _ in batch])
        except UNREACHABLE as error:
            self._done[:0] = batch
            self._unreachable(error)
            return 0
        self.crawler.signals.send_catch_log(
            signal=requests_acknowledged, scheduler=self, urls=[url for _, url in batch]
        )
        self.stats.inc_value(f"{STATS}acked", result.acked)
        if result.late:
            self.stats.inc_value(f"{STATS}acked/late", result.late)
        if result.stale:
            self.stats.inc_value(f"{STATS}acked/stale", result.stale)
        return result.acked + result.late

    def _flush_feeds(self) -> None:
        """Push feed-export buffers to the OS, so the items of acknowledged requests survive a SIGKILL.

        Scrapy's feed exporter has no flush API; its slots' files are public attributes.
        """
        exporter = self.crawler.get_extension(FeedExporter) if self._engine_slot is not None else None
        for slot in exporter.slots if exporter is not None else ():
            if slot.file is not None and not slot.file.closed:
                slot.file.flush()

    def renew_leases(self) -> int:
        """Extend every lease this worker holds (in progress or awaiting acknowledgement); how many."""
        ids = [
            *self._leased.values(),
            *(request_id for request_id, _ in self._prefetched),
            *(request_id for request_id, _ in self._done),
        ]
        lost = set(self.queue.renew(self.worker_id, ids, self.lease_seconds))
        if lost:
            # another worker may redo these: they will be acknowledged late or counted stale
            self.stats.inc_value(f"{STATS}leases/lost", len(lost))
            logger.warning(
                "%d leases of this worker expired before renewal (a stall longer than %.0f s?)",
                len(lost),
                self.lease_seconds,
            )
        return len(ids) - len(lost)

    # -- the heartbeat ------------------------------------------------------------------

    def _tick_soon(self) -> None:
        if self._ticking or self._closing:
            return
        self._ticking = True
        deferred_from_coro(self._tick()).addErrback(
            lambda failure: logger.error("Scheduler heartbeat failed: %s", failure.getErrorMessage())
        )

    async def _tick(self) -> None:
        """Every ack interval: reconnect if Redis was away, store held requests, acknowledge, renew leases."""
        try:
            if self.outage.down:
                if not self.outage.may_try():
                    return
                try:
                    await run_in_thread(self.server.ping)  # in a thread: a vanished host may take seconds
                except UNREACHABLE as error:
                    self._unreachable(error)
                    return
            was_down = self.outage.down
            if self._unsent and not self.push_unsent():
                return
            self.outage.recovered(0)
            if was_down:
                self._wake_engine()
            if self._seed_pending:
                self._mark_seeded()
            await self.acknowledge()
            now = time.monotonic()
            if now >= self._next_renew and not self._closing:
                self.renew_leases()
                self._next_renew = now + self.lease_seconds / 3
            if self.finisher.crawl_id is None and self._leased and now >= self._next_adopt:
                # working without knowing the crawl's id: learn it, to tell "finished" from "lost" later
                self.finisher.adopt(self.state.seeded())
                self._next_adopt = now + self.lease_seconds / 3
            if self.polls.idle and not self._leased and self.polls.due(now + self._tick_interval / 2):
                # an idle worker's poll (due before the next tick): next_request pops, has_pending reads
                self.polls.poll_now()
                self._wake_engine()
            self._record_round_trips()
        except UNREACHABLE as error:
            self._unreachable(error)
        finally:
            self._ticking = False

    def try_reconnect(self) -> bool:
        """Ping Redis and store held requests now (the heartbeat does this by itself). True if up."""
        try:
            self.server.ping()
        except UNREACHABLE as error:
            self._unreachable(error)
            return False
        return self.push_unsent()

    # -- pushing: batched, and held while Redis is away ---------------------------------

    def _unreachable(self, error: BaseException) -> None:
        """A Redis call failed for want of Redis: the outage logs it once and backs off."""
        self.outage.failed(error, len(self._unsent))

    def push_unsent(self) -> bool:
        """Push every request waiting in this process, oldest first; True once none is left."""
        stored = 0
        while self._unsent:
            try:
                stored += self._push_batch()[0]
            except UNREACHABLE as error:
                self._unreachable(error)
                return False
        self.outage.recovered(stored)
        return True

    def _push_soon(self) -> None:
        """``PUSH_DELAY`` after a request came with no pop to carry it: push it alone."""
        if self._unsent and not self._closing and self.outage.may_try():
            self.push_unsent()

    def _push_batch(self, pop: int = 0) -> tuple[int, Popped | None]:
        """One round trip: push up to ``PUSH_BATCH`` waiting requests, then lease up to ``pop`` requests
        if ``pop``. Returns how many were queued (not found seen) and the pop. Raises on a connection
        error, the requests still waiting."""
        batch = list(itertools.islice(self._unsent, PUSH_BATCH))
        held = self.outage.down  # these waited through an outage
        results, popped = self.queue.push_and_pop(
            [entry for entry, _ in batch], self.worker_id if pop else None, self.lease_seconds, pop
        )
        for _ in batch:
            self._unsent.popleft()
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

    def _refuse(self, request: Request, error: RefusedRequest) -> bool:
        """A request the shared queue does not take (:mod:`.admission`): dropped, as Scrapy's offsite
        filter drops a request for another site; counted per reason, logged once per reason."""
        self.stats.inc_value(f"{STATS}refused/{error.reason}")
        if error.reason not in self._refused_kinds:
            self._refused_kinds.add(error.reason)
            logger.warning(
                "Request %s not queued (%s); later ones refused for this reason are only counted "
                "(stats %srefused/%s)",
                request,
                error,
                STATS,
                error.reason,
            )
        self.crawler.signals.send_catch_log(
            signal=signals.request_dropped, request=request, spider=self.spider
        )
        return False

    def _enqueue_in_memory(self, request: Request, error: Exception) -> bool:
        """Like Scrapy's scheduler with a JOBDIR: a request that can't be stored is kept in this process."""
        if not self._logged_unserializable:
            self._logged_unserializable = True
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
        heapq.heappush(self._memory, (-request.priority, next(self._memory_seq), request))
        self.stats.inc_value(f"{STATS}enqueued/memory")
        self.stats.inc_value(f"{STATS}enqueued")
        return True

    def _bury(self, request_id: str, reason: str) -> None:
        """A payload read from the queue that is not a request this spider may run: into the dead
        letters, never retried (:mod:`.admission`); logged once per kind, counted per kind."""
        kind = reason.split(":", 1)[0].strip() or "payload"
        self.stats.inc_value(f"{STATS}dead")
        self.stats.inc_value(f"{STATS}dead/{kind}")
        if kind not in self._buried_kinds:
            self._buried_kinds.add(kind)
            logger.error(
                "Queued request %s refused (%s): moved to the dead letters %s, never retried; later ones "
                "of this kind are only counted (stats %sdead/%s, `solidot-crawl status`)",
                request_id,
                reason,
                self.queue.dead_key,
                STATS,
                kind,
            )
        try:
            self.queue.bury(request_id, reason)
        except UNREACHABLE as error:
            self._unreachable(error)

    def _payloads_missing(self, count: int) -> None:
        """Queued ids whose payload Redis no longer has: only eviction does that, and they are lost."""
        self.stats.inc_value(f"{STATS}payload_missing", count)
        logger.error(
            "%d queued requests had lost their payload in Redis at %s (evicted: maxmemory-policy is not "
            "noeviction?): they are lost; seed the crawl again to find them (stats %spayload_missing)",
            count,
            self.where,
            STATS,
        )

    def _record_round_trips(self) -> None:
        self.stats.set_value(f"{STATS}redis/round_trips", self.queue.round_trips + self.state.round_trips)
        if self.outage.outages:
            self.stats.set_value(f"{STATS}redis/outages", self.outage.outages)
