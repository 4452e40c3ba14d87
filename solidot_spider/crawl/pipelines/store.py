"""Store: upsert every story into MongoDB, in batches, without ever blocking the reactor.

:class:`MongoStorePipeline` writes from one thread, keeps and retries a batch while MongoDB is away
(backpressure past ``MONGO_MAX_BUFFER``, never a drop), and answers the shared crawl's
:data:`~scrapy_sharedcrawl.signals.ack_barrier` so no acknowledged request loses an item.

Design notes: docs/project-design.md#crawl-pipelines-store.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any, TypeVar

from scrapy import Request
from scrapy.crawler import Crawler
from scrapy.exceptions import NotConfigured
from scrapy.utils.asyncio import is_asyncio_available

from scrapy_sharedcrawl import signals as scheduling_signals
from scrapy_sharedcrawl.defaults import SETTINGS as SCHEDULER_DEFAULTS
from scrapy_sharedcrawl.durability import WriteMarks
from scrapy_sharedcrawl.outage import Outage
from scrapy_sharedcrawl.redact import redact_uri
from solidot_spider.archive.documents import StoryWrite, Touch, story_write
from solidot_spider.archive.mongo import BatchResult, MongoStore, StoreConfig, StoreError, StoreSettingsError
from solidot_spider.archive.policy import RefreshPolicy, clock_from_settings
from solidot_spider.archive.schedule import Miss
from solidot_spider.crawl import signals as solidot_signals
from solidot_spider.site.items import item_dict

logger = logging.getLogger(__name__)

_T = TypeVar("_T")

#: Tries of a write MongoDB refused with a transient write error, before it counts as rejected.
WRITE_ERROR_ATTEMPTS = 5

#: Seconds between two "buffer full" warnings.
FULL_LOG_INTERVAL = 60.0

#: Share of the scheduler's lease time an acknowledgement barrier waits for MongoDB: leases are
#: renewed every third of it, after the barrier returns.
BARRIER_SHARE_OF_LEASE = 0.25

STATS_PREFIX = "solidot/mongo/"
#: Stats of the re-fetch schedules and gaps the store moves (see storage/schedule.py).
REFRESH_STATS_PREFIX = "solidot/refresh/"


class MongoStorePipeline:
    """Upserts every item into ``MONGO_DATABASE.MONGO_COLLECTION``, one document per ``sid``.

    :meth:`touch` records a fetch of a story whose content did not change (the
    dedupe pipeline calls it, or sends ``solidot_spider.crawl.signals.story_unchanged``),
    so an unchanged re-crawl moves only ``last_seen`` and ``fetch_count``. Every write also moves
    the story's re-fetch schedule (``SOLIDOT_REFRESH_*``), and a sid that answered 404
    (``solidot_spider.crawl.signals.story_missing``) is recorded as a gap.
    """

    def __init__(self, crawler: Crawler, config: StoreConfig) -> None:
        assert crawler.stats is not None
        self.crawler = crawler
        self.stats = crawler.stats
        self.config = config
        self.where = redact_uri(config.uri)
        self._queue: deque[StoryWrite | Touch | Miss] = deque()
        self._in_flight = 0
        #: Writes received, and writes settled (acknowledged by MongoDB, or given up on): the store is
        #: durable up to write number ``_settled`` (writes settle in order).
        self._received = 0
        self._settled = 0
        #: Acknowledgement barriers: (writes that must settle, future to resolve).
        self._barriers: list[tuple[int, asyncio.Future[None]]] = []
        #: Where each finished request's writes end (``_received`` when it finished), until durable.
        self.marks = WriteMarks(crawler, lambda: self._received)
        self._closing = False
        self._full = False
        #: When each kind of wait ("away": the buffer full in an outage; "slower") was last logged.
        self._full_logged_at: dict[str, float] = {}
        self.outage = Outage(
            self.where,
            gone="MongoDB unreachable at {where} — retrying in {pause:g} s (doubling up to {cap:g} s), "
            "{buffered:,} items buffered ({error}: {detail})",
            back="MongoDB reachable again at {where} after {seconds:.0f} s and {retries} retries; "
            "{buffered:,} items buffered",
            logger=logger,
            retry_base=config.retry_base,
            retry_max=config.retry_max,
        )
        self._prepared = False
        self._wake = asyncio.Event()
        self._space = asyncio.Event()
        self._store: MongoStore | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._writer: asyncio.Task[None] | None = None
        self.policy = RefreshPolicy.from_settings(crawler.settings)
        self.clock = clock_from_settings(crawler.settings)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> MongoStorePipeline:
        config = StoreConfig.from_settings(crawler.settings)
        if not config.uri:
            # no message: Scrapy would log one at WARNING, and the embedded default is no problem
            logger.info("MONGO_URI is empty: stories are not stored in MongoDB")
            raise NotConfigured
        pipeline = cls(crawler, config)
        crawler.signals.connect(pipeline._story_unchanged, signal=solidot_signals.story_unchanged)
        crawler.signals.connect(pipeline._story_missing, signal=solidot_signals.story_missing)
        crawler.signals.connect(pipeline.ack_barrier, signal=scheduling_signals.ack_barrier)
        return pipeline

    @property
    def buffered(self) -> int:
        """Items and touches not yet acknowledged by MongoDB (the batch being written included)."""
        return len(self._queue) + self._in_flight

    @property
    def buffer_limit(self) -> int:
        """Writes held before an item waits: ``MONGO_MAX_BUFFER`` while MongoDB is away (the crawl rides
        out an outage), two batches while it answers (the one being written and the next): a store
        slower than the crawl then slows the crawl, instead of holding tens of thousands of fetched
        requests leased until it catches up (issue 19)."""
        if self.outage.down:
            return self.config.max_buffer
        return min(self.config.max_buffer, 2 * self.config.batch_size)

    # -- Scrapy's pipeline interface ---------------------------------------------------

    async def open_spider(self) -> None:
        if not is_asyncio_available():
            raise RuntimeError(
                "MongoStorePipeline needs an asyncio event loop: keep TWISTED_REACTOR at "
                "twisted.internet.asyncioreactor.AsyncioSelectorReactor (Scrapy's default)"
            )
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mongo-store")
        try:
            # in the worker: a mongodb+srv:// URI is resolved (DNS) while the client is built
            self._store = await self._run(MongoStore.open, self.config, self.policy, self.clock)
        except StoreSettingsError as error:
            self._executor.shutdown(wait=False)
            raise RuntimeError(str(error)) from None
        self._writer = asyncio.create_task(self._write_loop(), name="mongo-store-writer")
        self._writer.add_done_callback(self._writer_done)
        logger.info(
            "Storing stories in MongoDB at %s, %s.%s (batches of %d)",
            self.where,
            self.config.database,
            self.config.collection,
            self.config.batch_size,
        )

    async def process_item(self, item: Any) -> Any:
        story = item_dict(item)
        write = story_write(story, datetime.now(UTC), known_hash=story.get("content_hash"))
        while self.buffered >= self.buffer_limit:
            self._log_full()
            self._space.clear()
            await self._space.wait()
        self._enqueue(write)
        return item

    async def close_spider(self) -> None:
        if self._writer is None:
            return
        self._closing = True
        if self.buffered:
            logger.info(
                "Waiting for MongoDB at %s to acknowledge %s buffered items before closing",
                self.where,
                f"{self.buffered:,}",
            )
        self._wake.set()
        try:
            await self._writer
        finally:
            if self._store is not None:
                await self._run(self._store.close)
            assert self._executor is not None
            self._executor.shutdown(wait=True)

    # -- unchanged stories ---------------------------------------------------------------

    def touch(self, sid: int) -> None:
        """Record a fetch of story ``sid`` whose content is unchanged (not written again).

        Queues ``$max last_seen`` / ``$inc fetch_count`` for the stored story,
        written in order with the other items' batches. Call it instead of
        passing an unchanged item on; a sid not stored yet is left alone.
        """
        self._enqueue(Touch(sid, datetime.now(UTC)))

    def _story_unchanged(self, sid: int, **kwargs: Any) -> None:
        self.touch(sid)

    def _story_missing(self, sid: int, **kwargs: Any) -> None:
        """A sid answered 404: recorded as a gap to try again later (or, stored, looked at later)."""
        self._enqueue(Miss(sid, datetime.now(UTC)))

    # -- acknowledgements of a shared crawl ------------------------------------------------

    async def ack_barrier(
        self, scheduler: Any = None, requests: list[Request] | None = None
    ) -> list[Request] | None:
        """Write what is buffered now; → those of ``requests`` whose items MongoDB has not acknowledged
        yet (None: all durable). Without ``requests``: return once every item received so far is.

        Waits until the batch's first request not yet durable is (or everything asked for), so a
        store without a backlog answers None, and one with a backlog holds back only the requests
        behind it. Raises :class:`~scrapy_sharedcrawl.signals.AckPostponed` when MongoDB acknowledged
        no write for a quarter of the scheduler's lease time (away or stalled): the scheduler then
        keeps every request leased and asks again.
        """
        target = self._received if requests is None else self.marks.last(requests)
        if self._settled >= target:
            if requests is not None:
                self.marks.pending(requests, self._settled)  # forget them: durable
            return None
        if self._writer is None or self._writer.done():  # fail closed: nothing more will be written
            raise scheduling_signals.AckPostponed(
                f"the MongoDB writer has stopped with {target - self._settled:,} items not stored"
            )
        first = target if requests is None else self.marks.first_pending(requests, self._settled)
        loop = asyncio.get_running_loop()
        everything: asyncio.Future[None] = loop.create_future()  # the writer writes on to the last
        self._barriers.append((target, everything))
        future = everything
        if first is not None and first < target:
            future = loop.create_future()
            self._barriers.append((first, future))
        self._wake.set()
        lease = getattr(scheduler, "lease_seconds", 0) or SCHEDULER_DEFAULTS["SCHEDULER_LEASE_SECONDS"]
        timeout = BARRIER_SHARE_OF_LEASE * float(lease)
        settled_before = self._settled
        try:
            await asyncio.wait_for(asyncio.shield(future), timeout)
        except TimeoutError:
            if requests is None or self._settled == settled_before:
                raise scheduling_signals.AckPostponed(
                    f"{target - self._settled:,} items still wait for MongoDB at {self.where}"
                ) from None
        if requests is None:
            return None
        return self.marks.pending(requests, self._settled) or None

    def _writer_done(self, task: asyncio.Task[None]) -> None:
        """The writer ends at close; ending otherwise is a bug, said once: the barrier now fails closed,
        so the requests of the items it did not write stay leased and are crawled again."""
        if task.cancelled() or task.exception() is None:
            if self._closing:
                return
            logger.error("MongoDB store writer stopped before the crawl closed: nothing more is stored")
            return
        error = task.exception()
        logger.error(
            "MongoDB store writer failed (%s: %s): nothing more is stored, and the requests of the "
            "%s items it holds stay leased, to be crawled again",
            type(error).__name__,
            redact_uri(str(error))[:300],
            f"{self.buffered:,}",
        )

    def _settle(self, count: int) -> None:
        """``count`` more writes are settled (in order): release the barriers they complete."""
        self._settled += count
        self.stats.set_value(STATS_PREFIX + "buffered", self.buffered)
        waiting = []
        for target, future in self._barriers:
            if target <= self._settled:
                if not future.done():
                    future.set_result(None)
            else:
                waiting.append((target, future))
        self._barriers = waiting

    # -- the writer ------------------------------------------------------------------------

    def _enqueue(self, write: StoryWrite | Touch | Miss) -> None:
        self._queue.append(write)
        self._received += 1
        self.stats.max_value(STATS_PREFIX + "buffer_max", self.buffered)
        self.stats.set_value(STATS_PREFIX + "buffered", self.buffered)  # the heartbeat shows it
        if len(self._queue) >= self.config.batch_size:
            self._wake.set()

    async def _write_loop(self) -> None:
        """Write a batch when one is full, or every ``flush_interval`` s; on close, until empty."""
        while self._queue or not self._closing:
            if len(self._queue) < self.config.batch_size and not self._closing and not self._barriers:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):  # the time bound: flush what there is
                    await asyncio.wait_for(self._wake.wait(), self.config.flush_interval)
            if self._queue:
                take = min(self.config.batch_size, len(self._queue))
                batch = [self._queue.popleft() for _ in range(take)]
                self._in_flight = len(batch)
                try:
                    await self._write_until_acknowledged(batch)
                finally:
                    self._in_flight = 0
                self._settle(len(batch))
                self._release_space()
            elif self._barriers:  # nothing left to write: every barrier is met
                self._settle(0)

    async def _write_until_acknowledged(self, batch: list[StoryWrite | Touch | Miss]) -> None:
        """Write ``batch``; while MongoDB is unreachable, wait and try again, for as long as it takes."""
        assert self._store is not None
        attempt = 0
        write_error_attempts = 0
        while batch:
            try:
                if not self._prepared:
                    await self._run(self._store.prepare)
                    self._prepared = True
                result = await self._run(self._store.write_batch, batch)
            except StoreError as error:
                attempt += 1
                await self._wait_out(error, attempt)
                continue
            except Exception as error:
                # a bug, not an outage: give up on this batch loudly rather than hang the crawl
                logger.exception("MongoDB store failed to write a batch of %d", len(batch))
                self._give_up(batch, type(error).__name__)
                return
            self._reachable_again()
            self._count(result)
            batch = result.retry
            if batch:
                write_error_attempts += 1
                self.stats.inc_value(STATS_PREFIX + "retries")
                if write_error_attempts >= WRITE_ERROR_ATTEMPTS:
                    self._give_up(batch, f"still refused after {WRITE_ERROR_ATTEMPTS} tries")
                    return
                await asyncio.sleep(self.config.backoff(write_error_attempts))

    async def _wait_out(self, error: StoreError, attempt: int) -> None:
        delay = self.config.backoff(attempt)
        name = type(error).__name__
        self.stats.inc_value(STATS_PREFIX + "retries")
        self.stats.inc_value(STATS_PREFIX + f"errors/{name}")
        # after an outage the server may be a new one (a restarted test server has no indexes)
        self._prepared = False
        self.outage.failed(error, cap=self.config.retry_max, buffered=self.buffered, detail=_short(error))
        self._release_space()  # away: the buffer may grow to MONGO_MAX_BUFFER now
        await asyncio.sleep(delay)

    def _reachable_again(self) -> None:
        self.outage.recovered(retries=self.outage.attempts, buffered=self.buffered)

    def _count(self, result: BatchResult) -> None:
        self.stats.inc_value(STATS_PREFIX + "batches")
        for name in ("upserted", "modified", "unchanged", "touched"):
            if count := getattr(result, name):
                self.stats.inc_value(STATS_PREFIX + name, count)
        for name, count in result.refresh.items():
            self.stats.inc_value(REFRESH_STATS_PREFIX + name, count)
        for rejected in result.rejected:
            self.stats.inc_value(STATS_PREFIX + f"errors/{rejected.error}")
            logger.error(
                "MongoDB rejected story sid=%s (%s%s): %s — not retried",
                rejected.sid,
                rejected.error,
                "" if rejected.code is None else f" {rejected.code}",
                redact_uri(rejected.message),
            )
            self._rejected(rejected.sid, rejected.error)

    def _give_up(self, batch: list[StoryWrite | Touch | Miss], why: str) -> None:
        for write in batch:
            logger.error("MongoDB store gave up on story sid=%s (%s) — not retried", write.sid, why)
            self._rejected(write.sid, why)

    def _rejected(self, sid: int, reason: str) -> None:
        """A story that is not stored: counted, and announced so that nothing records it as stored."""
        self.stats.inc_value(STATS_PREFIX + "rejected")
        self.crawler.signals.send_catch_log(signal=solidot_signals.story_rejected, sid=sid, reason=reason)

    def _log_full(self) -> None:
        if self._full:
            return
        self._full = True
        away = self.outage.down
        self.stats.inc_value(STATS_PREFIX + ("waits/buffer_full" if away else "waits/store_slower"))
        # a slow MongoDB fills the buffer again and again: one line a minute of each kind says enough
        now, kind = time.monotonic(), "away" if away else "slower"
        if now - self._full_logged_at.get(kind, -FULL_LOG_INTERVAL) < FULL_LOG_INTERVAL:
            return
        self._full_logged_at[kind] = now
        if away:
            logger.warning(
                "MongoDB buffer full: %s items wait for MongoDB at %s (MONGO_MAX_BUFFER) — "
                "items are held back until it catches up",
                f"{self.buffered:,}",
                self.where,
            )
        else:
            logger.info(
                "MongoDB at %s is slower than the crawl: %s items (two batches) wait for it, and the crawl "
                "waits with them",
                self.where,
                f"{self.buffered:,}",
            )

    def _release_space(self) -> None:
        if self.buffered < self.buffer_limit:
            if self._full:
                logger.debug("MongoDB buffer has room again: %s items buffered", f"{self.buffered:,}")
                self._full = False
            self._space.set()

    async def _run(self, function: Callable[..., _T], *args: Any) -> _T:
        """``function(*args)`` in the store's one worker thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(function, *args))


def _short(error: BaseException) -> str:
    """The gist of a pymongo error: its first sentence, without topology dumps or credentials."""
    text = redact_uri(str(error)).split(", Timeout:")[0].split(", full error:")[0]
    return text if len(text) <= 160 else text[:160] + "…"
