"""Stats shared by every worker of a crawl: Scrapy's counters summed in Redis, and pages per minute.

:class:`RedisStatsCollector` (``STATS_CLASS`` with a Redis) keeps Scrapy's per-worker stats and adds
each counter's deltas to the crawl's shared hash every ``STATS_PUSH_INTERVAL`` s and at close, each
push applied at most once; gauges stay per worker, and the shared stats outlive the crawl.

Design notes: docs/framework-design.md#stats.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import redis
from scrapy import Spider
from scrapy.crawler import Crawler
from scrapy.settings import BaseSettings
from scrapy.statscollectors import MemoryStatsCollector
from scrapy.utils.asyncio import create_looping_call, run_in_thread
from scrapy.utils.defer import deferred_from_coro

from scrapy_sharedcrawl.config import bool_setting, float_setting, redis_configured
from scrapy_sharedcrawl.connection import describe, redis_from_settings
from scrapy_sharedcrawl.defaults import SETTINGS as DEFAULTS
from scrapy_sharedcrawl.keys import LUA_LEASED, LUA_QUEUED, CrawlKeys, this_worker
from scrapy_sharedcrawl.outage import Outage
from scrapy_sharedcrawl.timeseries import SeriesRecorder, series_fields, series_key, series_points

logger = logging.getLogger(__name__)

#: The stat counted per minute for pages/min.
PAGES_STAT = "response_received_count"
#: How long a per-minute page counter is kept (s).
PAGES_TTL = 24 * 3600
#: Per-minute counters deleted when a new crawl starts: the last this many minutes.
PAGES_RESET_MINUTES = 120


#: Bounds of STATS_PUSH_INTERVAL (s): a shorter interval makes the push loop spin.
STATS_INTERVAL_MIN, STATS_INTERVAL_MAX = 0.1, 3600.0
#: Bounds of STATS_TTL (s): Redis expires the stats at once with a TTL of 0.
STATS_TTL_MIN, STATS_TTL_MAX = 1.0, 366 * 24 * 3600.0


def stats_timing(settings: BaseSettings) -> tuple[float, float]:
    """``STATS_PUSH_INTERVAL`` and ``STATS_TTL`` (s), checked: SettingError when out of range."""
    interval = float_setting(
        settings,
        "STATS_PUSH_INTERVAL",
        DEFAULTS["STATS_PUSH_INTERVAL"],
        at_least=STATS_INTERVAL_MIN,
        at_most=STATS_INTERVAL_MAX,
        meaning="seconds between pushes",
    )
    ttl = float_setting(
        settings,
        "STATS_TTL",
        DEFAULTS["STATS_TTL"],
        at_least=STATS_TTL_MIN,
        at_most=STATS_TTL_MAX,
        meaning="seconds",
    )
    return interval, ttl


#: Add one worker's deltas. KEYS: 1 stats, 2 meta, 3… per-minute page counters. ARGV: 1 worker,
#: 2 sequence number, 3 TTL (ms), 4 page TTL (ms), 5 number of counters, then (name, i|f, delta) per
#: counter, then one page delta per KEYS[3…]. → 1 applied, 0 already applied (a retried push).
_LUA_PUSH = """
local field = 'seq:' .. ARGV[1]
if tonumber(ARGV[2]) <= tonumber(redis.call('HGET', KEYS[2], field) or '0') then return 0 end
redis.call('HSET', KEYS[2], field, ARGV[2])
local i = 6
for _ = 1, tonumber(ARGV[5]) do
  if ARGV[i + 1] == 'f' then
    redis.call('HINCRBYFLOAT', KEYS[1], ARGV[i], ARGV[i + 2])
  else
    redis.call('HINCRBY', KEYS[1], ARGV[i], ARGV[i + 2])
  end
  i = i + 3
end
for k = 3, #KEYS do
  redis.call('INCRBY', KEYS[k], ARGV[i])
  redis.call('PEXPIRE', KEYS[k], ARGV[4])
  i = i + 1
end
local t = redis.call('TIME')
redis.call('HSET', KEYS[2], 'updated_at', t[1] .. '.' .. string.format('%06d', tonumber(t[2])))
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
return 1
"""

#: A worker opens. KEYS: 1 stats, 2 meta, 3… page counters of recent minutes. ARGV: 1 "1" to start
#: afresh whatever the state, 2 TTL (ms). A finished crawl's stats are deleted (this is a new crawl),
#: meta and all: its ``seen`` count goes too. started_at is set once. → 1 if the stats were started afresh.
_LUA_BEGIN = """
local fresh = ARGV[1] == '1' or redis.call('HEXISTS', KEYS[2], 'finished_at') == 1
if fresh then redis.call('DEL', unpack(KEYS)) end
local t = redis.call('TIME')
redis.call('HSETNX', KEYS[2], 'started_at', t[1] .. '.' .. string.format('%06d', tonumber(t[2])))
redis.call('PEXPIRE', KEYS[2], ARGV[2])
return fresh and 1 or 0
"""

#: A worker closes with reason "finished". KEYS: 1 meta, 2 queue's count, 3 lease counter. → 1 if the crawl
#: is over (nothing queued or leased) and is now marked finished.
_LUA_FINISH = (
    LUA_QUEUED
    + LUA_LEASED
    + """
if queued_count(KEYS[2]) > 0 or leased_count(KEYS[3]) > 0 then return 0 end
local t = redis.call('TIME')
redis.call('HSET', KEYS[1], 'finished_at', t[1] .. '.' .. string.format('%06d', tonumber(t[2])))
return 1
"""
)


@dataclass
class Push:
    """Counters and page counts to add to the shared stats, under one sequence number."""

    seq: int
    counters: dict[str, int | float]
    pages: dict[int, int]


class RedisStatsCollector(MemoryStatsCollector):
    """Scrapy's stats, with every counter also summed over the crawl's workers in Redis (module docstring)."""

    def __init__(self, crawler: Crawler) -> None:
        super().__init__(crawler)
        settings = crawler.settings
        self.keys = CrawlKeys.from_crawler(crawler)
        self.where = describe(settings)
        self.server: redis.Redis | None = (
            redis_from_settings(settings) if redis_configured(settings) else None
        )
        self.interval, ttl = stats_timing(settings)
        self.ttl_ms = round(ttl * 1000)
        self.flush_on_start = bool_setting(
            settings, "SCHEDULER_FLUSH_ON_START", DEFAULTS["SCHEDULER_FLUSH_ON_START"]
        )
        self.worker_id = this_worker()
        self._counters: dict[str, int | float] = {}
        self._pages: dict[int, int] = {}
        self._unsent: Push | None = None  # a push that failed: retried as is, before anything new
        self._seq = 0
        self._loop: Any = None
        self._pushing = False
        #: Pushes fail while Redis is away and are retried at the next interval: no backoff of its own.
        self.outage = Outage(
            self.where,
            gone="Shared stats: Redis at {where} is unreachable ({error}) — counting locally, pushing when "
            "it is back",
            back="Shared stats: Redis at {where} is back, counts pushed",
            logger=logger,
            retry_base=0.0,
        )
        if self.server is not None:
            self._push_script = self.server.register_script(_LUA_PUSH)
            self._begin_script = self.server.register_script(_LUA_BEGIN)
            self._finish_script = self.server.register_script(_LUA_FINISH)
            self.series = SeriesRecorder(  # the crawl's time series, pushed with the stats (.timeseries)
                self.server,
                keys=self.keys,
                interval=self.interval,
                ttl_ms=self.ttl_ms,
                points=series_points(settings),
                fields=series_fields(settings),
            )

    # -- counting (the only hot path: a dict update per call) --------------------------

    #: Scrapy 2.19's ``StatsCollector.__getattribute__`` wraps the public methods to warn about their
    #: deprecated ``spider`` argument, and on the way makes *every* attribute lookup first try
    #: ``_cached_<name>``, raising and catching an AttributeError: 411k calls, 1.2 s of a 5,000-page
    #: crawl under cProfile. These methods take ``spider`` and ignore it (Scrapy no longer passes it),
    #: so plain lookup; a third-party caller still passing it gets no warning from this collector.
    __getattribute__ = object.__getattribute__

    def inc_value(self, key: str, count: int = 1, start: int = 0, spider: Spider | None = None) -> None:
        added = count if key in self._stats else start + count
        super().inc_value(key, count, start)
        if isinstance(added, int | float) and added:
            self._counters[key] = self._counters.get(key, 0) + added
            if key == PAGES_STAT:
                minute = int(time.time() // 60)
                self._pages[minute] = self._pages.get(minute, 0) + int(added)

    # -- lifecycle -----------------------------------------------------------------------

    def open_spider(self, spider: Spider | None = None) -> None:
        super().open_spider()
        if self.server is None:
            return
        try:
            minute = int(time.time() // 60)
            recent = [self.keys.pages(m) for m in range(minute - PAGES_RESET_MINUTES, minute + 2)]
            fresh = self._begin_script(
                keys=[self.keys.stats, self.keys.meta, *recent, series_key(self.keys.prefix)],
                args=[int(self.flush_on_start), self.ttl_ms],
            )
            if fresh:
                logger.info("Shared stats of a new crawl at %s (%s)", self.where, self.keys.stats)
        except redis.RedisError as error:
            self._failed(error)
        self._loop = create_looping_call(self._push_soon)
        self._loop.start(self.interval, now=False)

    def close_spider(self, spider: Spider | None = None, reason: str | None = None) -> None:
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        if self.server is not None:
            self.push()  # on the reactor thread: the crawl is over, nothing else waits
            if reason == "finished" and not self.outage.down:
                try:
                    if self._finish_script(keys=[self.keys.meta, self.keys.queued, self.keys.leased]):
                        logger.info("Crawl finished: shared stats kept at %s", self.keys.stats)
                except redis.RedisError as error:
                    self._failed(error)
            if self._unsent is not None:
                logger.warning(
                    "Shared stats at %s miss this worker's last %d counter updates (Redis unreachable)",
                    self.where,
                    len(self._unsent.counters),
                )
        super().close_spider(reason=reason)

    # -- pushing -------------------------------------------------------------------------

    def _push_soon(self) -> None:
        """Every interval: take the deltas here, on the reactor thread, and send them from a thread."""
        if self._pushing or (batch := self.take()) is None:
            return
        self._pushing = True
        deferred_from_coro(self._push_in_thread(batch)).addErrback(
            lambda failure: logger.error("Pushing shared stats failed: %s", failure.getErrorMessage())
        )

    async def _push_in_thread(self, batch: Push) -> None:
        try:
            await run_in_thread(self._push, batch)
        except redis.RedisError as error:
            self._failed(error)
        else:
            self._pushed(batch)
        finally:
            self._pushing = False

    def take(self) -> Push | None:
        """What to push next: the failed push if any, else the deltas counted since the last one.

        Only on the reactor thread, which also counts: the deltas are swapped out, not copied.
        """
        if self._unsent is None and (self._counters or self._pages):
            counters, self._counters = self._counters, {}
            pages, self._pages = self._pages, {}
            self._seq += 1
            self._unsent = Push(self._seq, counters, pages)
        return self._unsent

    def push(self) -> bool:
        """Push everything counted so far, now, on this thread; True once nothing is left."""
        while (batch := self.take()) is not None:
            try:
                self._push(batch)
            except redis.RedisError as error:
                self._failed(error)
                return False
            self._pushed(batch)
        return True

    def _pushed(self, batch: Push) -> None:
        if self._unsent is batch:
            self._unsent = None
        self.outage.recovered()

    def _push(self, batch: Push) -> None:
        assert self.server is not None
        args: list[Any] = [self.worker_id, batch.seq, self.ttl_ms, PAGES_TTL * 1000, len(batch.counters)]
        for name, delta in batch.counters.items():
            args += [name, "f" if isinstance(delta, float) else "i", repr(delta)]
        minutes = sorted(batch.pages)
        args += [batch.pages[minute] for minute in minutes]
        keys = [self.keys.stats, self.keys.meta, *(self.keys.pages(minute) for minute in minutes)]
        self.series.run_with(self._push_script, keys, args)  # and a time-series point, same round trip

    def _failed(self, error: BaseException) -> None:
        self.outage.failed(error)
