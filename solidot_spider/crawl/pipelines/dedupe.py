"""Deduplicate: write a story again only when its content changed.

:class:`DedupePipeline` compares each story's content hash with the last one recorded for its sid
(:class:`ContentHashIndex`: in memory, or a Redis hash with ``REDIS_URL``) and drops an unchanged one;
a hash is recorded only once its story is stored, and Redis trouble never costs a story.

Design notes: docs/project-design.md#crawl-pipelines-dedupe.
"""

from __future__ import annotations

import logging
from time import monotonic
from typing import Any

from scrapy import signals
from scrapy.crawler import Crawler
from scrapy.http import Response
from scrapy.utils.asyncio import sleep
from scrapy.utils.defer import deferred_from_coro, maybe_deferred_to_future
from twisted.internet.defer import Deferred
from twisted.python.failure import Failure

from scrapy_sharedcrawl.config import float_setting, is_shared_crawl, redis_configured
from scrapy_sharedcrawl.connection import describe, redis_from_settings
from scrapy_sharedcrawl.outage import Outage
from scrapy_sharedcrawl.outcomes import note_outcome
from scrapy_sharedcrawl.signals import requests_acknowledged
from solidot_spider.archive.hashes import (
    DEFAULT_KEY,
    AcknowledgedContentHashIndex,
    ContentHashIndex,
    IndexUnavailable,
    MemoryContentHashIndex,
    RedisContentHashIndex,
    StoredContentHashIndex,
    outcome_of,
)
from solidot_spider.archive.mongo import StoreConfig
from solidot_spider.archive.policy import Outcome
from solidot_spider.crawl.pipelines.drops import ItemDropper
from solidot_spider.crawl.signals import story_rejected, story_unchanged
from solidot_spider.defaults import SETTINGS
from solidot_spider.site.content import content_hash
from solidot_spider.site.items import item_dict

logger = logging.getLogger(__name__)

#: Defaults of the settings (declared in solidot_spider/defaults.py).
DEFAULT_REDIS_TIMEOUT: float = SETTINGS["SOLIDOT_DEDUPE_REDIS_TIMEOUT"]
DEFAULT_RETRY_MAX: float = SETTINGS["SOLIDOT_DEDUPE_RETRY_MAX"]
#: First pause between Redis attempts; it doubles up to SOLIDOT_DEDUPE_RETRY_MAX.
RETRY_BASE = 0.1
#: Longest a single Redis call may block its thread (connect or reply).
SOCKET_TIMEOUT_MAX = 5.0


class DedupePipeline:
    """Pass new and changed stories, drop unchanged and duplicate ones (see the module docstring)."""

    def __init__(
        self,
        crawler: Crawler,
        index: ContentHashIndex,
        redis_timeout: float = DEFAULT_REDIS_TIMEOUT,
        retry_max: float = DEFAULT_RETRY_MAX,
        record_on_ack: bool = False,
    ) -> None:
        self.crawler = crawler
        self.index = index
        #: The index to record in when requests are acknowledged; None: record as stories pass.
        self.acked_index: AcknowledgedContentHashIndex | None = (
            index if record_on_ack and isinstance(index, AcknowledgedContentHashIndex) else None
        )
        self.redis_timeout = redis_timeout
        self.retry_max = retry_max
        self.dropper = ItemDropper(
            crawler, "dedupe", stats_prefix="solidot/dedupe/", log_level=logging.INFO, logger=logger
        )
        #: sid → digest passed in this run: a second fetch with the same content is a duplicate.
        self._seen: dict[int, str] = {}
        #: id(item) → (sid, digest, recorded in the index) of passed items until they are stored
        #: or lost downstream.
        self._in_flight: dict[int, tuple[int, str, bool]] = {}
        #: monotonic time the index stopped answering, None while it answers.
        #: The index's outages: logged once each way. Each story's own retries back off from
        #: RETRY_BASE; the outage bounds the wait of all of them together (``redis_timeout``).
        self.outage = Outage(
            "",
            gone="Dedupe: {where} unreachable ({detail}) — retrying with backoff up to {cap:.1f} s apart; "
            "after {timeout:.0f} s stories pass as new",
            back="Dedupe: {where} answers again after {seconds:.1f} s",
            logger=logger,
        )
        self._outage_reported = False
        # recording on acknowledgement (shared crawl) only:
        #: sid → digest passed by this worker and not recorded yet; compared before the index.
        self._pending: dict[int, str] = {}
        #: request URL → (sid, digest) of stories its response passed and the store took, unacknowledged.
        self._unacked: dict[str, list[tuple[int, str]]] = {}
        #: sid → digest acknowledged, to record in the index.
        self._to_record: dict[int, str] = {}
        self._recording: Deferred[bool] | None = None
        self._record_failing = False
        crawler.signals.connect(self.item_stored, signal=signals.item_scraped)
        crawler.signals.connect(self.item_lost, signal=signals.item_dropped)
        crawler.signals.connect(self.item_lost, signal=signals.item_error)
        crawler.signals.connect(self.story_rejected, signal=story_rejected)
        if self.acked_index is not None:
            crawler.signals.connect(self.requests_acknowledged, signal=requests_acknowledged)
            crawler.signals.connect(self.spider_closed, signal=signals.spider_closed)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> DedupePipeline:
        settings = crawler.settings
        redis_timeout = float_setting(
            settings, "SOLIDOT_DEDUPE_REDIS_TIMEOUT", DEFAULT_REDIS_TIMEOUT, at_least=0, at_most=86_400
        )
        retry_max = float_setting(
            settings, "SOLIDOT_DEDUPE_RETRY_MAX", DEFAULT_RETRY_MAX, above=0, at_most=3600
        )
        index: ContentHashIndex
        if redis_configured(settings):
            index = RedisContentHashIndex(
                redis_from_settings(settings, timeout=min(SOCKET_TIMEOUT_MAX, redis_timeout)),
                describe(settings),
                key=settings.get("SOLIDOT_DEDUPE_KEY") or DEFAULT_KEY,
            )
        elif (store := StoreConfig.from_settings(settings)).uri:
            index = StoredContentHashIndex(
                store.uri, store.database, store.collection, timeout_ms=store.server_selection_timeout_ms
            )
        else:
            index = MemoryContentHashIndex()
        return cls(
            crawler,
            index,
            redis_timeout=redis_timeout,
            retry_max=retry_max,
            record_on_ack=is_shared_crawl(settings),
        )

    def open_spider(self) -> None:
        logger.info(
            "Dedupe: content hashes in %s, recorded %s",
            self.index.describe(),
            "when their requests are acknowledged (shared crawl)"
            if self.acked_index is not None
            else "as stories pass",
        )

    async def close_spider(self) -> None:
        if self.acked_index is None:
            await self.index.close()
        # else at spider_closed: the scheduler acknowledges its last requests after the pipelines close

    async def process_item(self, item: Any) -> Any:
        story = item_dict(item)
        sid = story["sid"]
        digest = content_hash(story)
        if self._seen.get(sid) == digest:
            self.dropper.drop("duplicate", sid, "same content already passed in this run")
        self._seen[sid] = digest  # before awaiting: a concurrent copy of this story is a duplicate
        if self.acked_index is not None:
            outcome = await self._compare(self.acked_index, sid, digest)
        else:
            outcome = await self._ask(self.index.compare_and_set, sid, digest)
        note_outcome(self.crawler, item, f"story_{outcome or 'new'}")  # its page's outcome
        if outcome == "unchanged":
            await self.crawler.signals.send_catch_log_async(story_unchanged, sid=sid, item=item)
            self.dropper.drop("unchanged", sid, "same content as the last time it was written")
        self.crawler.stats.inc_value(f"solidot/dedupe/{outcome or 'new'}")
        recorded = outcome is not None and self.acked_index is None
        self._in_flight[id(item)] = (sid, digest, recorded)
        if self.acked_index is not None:
            self._pending[sid] = digest
        return item

    def item_stored(self, item: Any, response: Response | None = None) -> None:
        """``item_scraped``: the story went through every pipeline. Alone, its record stands; in a
        shared crawl it waits for the acknowledgement of the request that produced it."""
        passed = self._in_flight.pop(id(item), None)
        if passed is None or self.acked_index is None:
            return
        sid, digest, _ = passed
        request = response.request if response is not None else None
        if request is None:  # not from a leased request (an item from start()): nothing to wait for
            self._to_record[sid] = digest
            self._record_soon()
        else:
            self._unacked.setdefault(request.url, []).append((sid, digest))

    def story_rejected(self, sid: int, reason: str = "") -> None:
        """The store could not store ``sid``: never record its hash (a later crawl must write it), and
        let a later copy in this run pass again."""
        self._pending.pop(sid, None)
        self._to_record.pop(sid, None)
        digest = self._seen.pop(sid, None)
        for url, passed in list(self._unacked.items()):
            kept = [(story, story_digest) for story, story_digest in passed if story != sid]
            if kept:
                self._unacked[url] = kept
            else:
                del self._unacked[url]
        if self.acked_index is None and digest is not None:  # recorded as it passed: unrecord it
            deferred_from_coro(self.index.forget(sid, digest)).addErrback(
                lambda failure: logger.error("Dedupe could not forget sid=%s: %s", sid, failure.value)
            )

    def requests_acknowledged(self, urls: list[str]) -> None:
        """The scheduler acknowledged these requests: their stories are durable, record their hashes."""
        for url in urls:
            for sid, digest in self._unacked.pop(url, ()):
                self._to_record[sid] = digest
        if self._to_record:
            self._record_soon()

    def _record_soon(self) -> None:
        if self._recording is None:
            recording = deferred_from_coro(self._record())
            self._recording = recording
            recording.addBoth(self._recorded)

    def _recorded(self, result: Any) -> None:
        self._recording = None
        if isinstance(result, Failure):  # a bug, not an outage (those are handled in _record)
            logger.error("Dedupe: recording content hashes failed: %s", result.getErrorMessage())

    async def _record(self) -> bool:
        """Record the acknowledged hashes; True once none is left. A failure leaves them for the next
        acknowledgement (or the close)."""
        assert self.acked_index is not None
        while self._to_record:
            batch = dict(self._to_record)
            try:
                await self.acked_index.record(batch)
            except IndexUnavailable as error:
                self.crawler.stats.inc_value("solidot/dedupe/record_retries")
                if not self._record_failing:
                    self._record_failing = True
                    logger.warning(
                        "Dedupe: could not record %d content hashes in %s (%s); trying again with the next "
                        "acknowledgement",
                        len(batch),
                        self.index.describe(),
                        error,
                    )
                return False
            if self._record_failing:
                self._record_failing = False
                logger.info("Dedupe: recording content hashes in %s again", self.index.describe())
            for sid, digest in batch.items():
                if self._to_record.get(sid) == digest:
                    del self._to_record[sid]
                if self._pending.get(sid) == digest:
                    del self._pending[sid]
            self.crawler.stats.inc_value("solidot/dedupe/recorded", len(batch))
        return True

    async def spider_closed(self) -> None:
        """Record what the scheduler's last acknowledgements left, then close the index (shared crawl)."""
        if self._recording is not None:
            await maybe_deferred_to_future(self._recording)
        deadline = monotonic() + self.redis_timeout
        attempt = 0
        while not await self._record() and monotonic() < deadline:
            attempt += 1
            await sleep(min(self.retry_max, RETRY_BASE * 2**attempt))
        if self._to_record:
            logger.warning(
                "Dedupe: %d content hashes of stored stories not recorded in %s: the next crawl writes "
                "these stories again (same content, harmless)",
                len(self._to_record),
                self.index.describe(),
            )
        await self.index.close()

    async def item_lost(self, item: Any) -> None:
        """``item_dropped`` / ``item_error`` after this stage passed the story: unrecord it,
        so the next fetch writes it instead of skipping it as unchanged or duplicate."""
        passed = self._in_flight.pop(id(item), None)
        if passed is None:
            return  # dropped by this stage or before it
        sid, digest, recorded = passed
        if self._seen.get(sid) == digest:
            del self._seen[sid]
        if self._pending.get(sid) == digest:
            del self._pending[sid]
        if not recorded:
            return
        try:
            await self.index.forget(sid, digest)
        except IndexUnavailable as error:
            self.crawler.stats.inc_value("solidot/dedupe/forget_failed")
            logger.warning(
                "Dedupe: story sid=%s was not stored downstream and %s could not forget it (%s); "
                "the next crawl may skip it as unchanged",
                sid,
                self.index.describe(),
                error,
            )
        else:
            self.crawler.stats.inc_value("solidot/dedupe/forgotten")

    async def _compare(self, index: AcknowledgedContentHashIndex, sid: int, digest: str) -> Outcome | None:
        """Compare with what this worker passed but has not recorded yet, else with the index."""
        previous = self._pending.get(sid)
        if previous is not None:
            return outcome_of(previous, digest)
        return await self._ask(index.compare, sid, digest)

    async def _ask(self, call: Any, sid: int, digest: str) -> Outcome | None:
        """``call(sid, digest)`` on the index, retrying with backoff while it is unreachable; None once
        the wait is over (the story then passes as new, unrecorded).

        The wait is bounded per outage, not per story: once the index has been
        unreachable for ``redis_timeout`` seconds, each story gets a single try.
        """
        attempt = 0
        while True:
            try:
                outcome: Outcome = await call(sid, digest)
            except IndexUnavailable as error:
                now = monotonic()
                if not self.outage.down and error.retriable:  # the first failure of an outage
                    self.outage.where = self.index.describe()
                    self.outage.failed(error, detail=error, cap=self.retry_max, timeout=self.redis_timeout)
                since = self.outage.since if self.outage.since is not None else now
                delay = min(self.retry_max, RETRY_BASE * 2**attempt)
                if not error.retriable or now + delay > since + self.redis_timeout:
                    self._give_up(sid, error)
                    return None
                attempt += 1
                self.crawler.stats.inc_value("solidot/dedupe/redis_retries")
                await sleep(delay)
            else:
                self.outage.recovered()
                self._outage_reported = False
                return outcome

    def _give_up(self, sid: int, error: IndexUnavailable) -> None:
        """Count a story that passes unrecorded; say so once per outage."""
        self.crawler.stats.inc_value("solidot/dedupe/redis_errors")
        if not self._outage_reported:
            self._outage_reported = True
            logger.warning(
                "Dedupe: %s failing (%s); story sid=%s and the next ones pass as new "
                "(counted in solidot/dedupe/redis_errors) until it answers again",
                self.index.describe(),
                error,
                sid,
            )
