"""Hold each host to one request rate across every worker of a shared crawl, through Redis.

:class:`ClusterRateLimitMiddleware` makes every request wait for its turn at a per-host limiter in
Redis (GCRA, plus the pauses any worker's backoff publishes); while Redis is unreachable a host is
paced by this process alone.

Design notes: docs/framework-design.md#cluster_rate.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import redis
from scrapy import signals
from scrapy.crawler import Crawler
from scrapy.exceptions import NotConfigured
from scrapy.http import Request
from scrapy.robotstxt import RobotParser
from scrapy.utils.asyncio import run_in_thread, sleep
from scrapy.utils.defer import maybe_deferred_to_future
from twisted.internet.defer import DeferredLock

from scrapy_sharedcrawl.backoff import host_paused
from scrapy_sharedcrawl.config import float_setting, redis_configured
from scrapy_sharedcrawl.connection import describe, redis_from_settings
from scrapy_sharedcrawl.defaults import SETTINGS as DEFAULTS
from scrapy_sharedcrawl.host_names import request_host
from scrapy_sharedcrawl.outage import Outage

logger = logging.getLogger(__name__)

#: Hosts without a rate: how often (s) a worker looks for a cluster-wide pause.
PAUSE_CHECK_INTERVAL = 0.25
#: A host's limiter is forgotten this long (ms) after its last use.
KEY_TTL_MS = 3600 * 1000
#: Pauses between tries (s) while Redis is unreachable: doubling from the first, capped.
RETRY_BASE, RETRY_MAX = 0.5, 10.0
STATS = "cluster_rate/"

#: Take a turn. KEYS[1] = the host's hash. ARGV: 1 interval (µs), 2 "1" to reserve a turn (else only
#: check for a pause), 3 earliest turn from now (µs: this worker's own schedule, which leads after an
#: outage), 4 key TTL (ms). → {µs until a pause ends (0: none), µs until the reserved turn (-1: none
#: reserved)}. Paused: nothing is reserved. The interval is kept too (``iv``): the shared queue hands a
#: host's requests out at that pace (:mod:`.queue`), a robots.txt Crawl-delay included.
_LUA_TURN = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local state = redis.call('HMGET', KEYS[1], 'tat', 'pause_until')
local pause = tonumber(state[2] or '0') or 0
if pause > now then return {pause - now, -1} end
if ARGV[2] ~= '1' then return {0, -1} end
local at = math.max(tonumber(state[1] or '0') or 0, now + tonumber(ARGV[3]))
redis.call('HSET', KEYS[1], 'tat', string.format('%.0f', at + tonumber(ARGV[1])), 'iv', ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return {0, at - now}
"""

#: Pause the host. KEYS[1] = the host's hash. ARGV: 1 seconds (µs), 2 why, 3 key TTL (ms).
#: A longer pause already set wins. → 1 if the pause was set or extended.
_LUA_PAUSE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local until_ = now + tonumber(ARGV[1])
if until_ <= (tonumber(redis.call('HGET', KEYS[1], 'pause_until') or '0') or 0) then return 0 end
redis.call('HSET', KEYS[1], 'pause_until', string.format('%.0f', until_), 'pause_reason', ARGV[2])
redis.call('PEXPIRE', KEYS[1], math.floor(tonumber(ARGV[1]) / 1000) + tonumber(ARGV[3]))
return 1
"""


@dataclass
class HostState:
    """This worker's view of one host: its queue of waiting requests and what it knows locally."""

    lock: DeferredLock = field(default_factory=DeferredLock)
    crawl_delay: float = 0.0  # from robots.txt, capped
    local_next: float = 0.0  # monotonic; the next turn when pacing locally (Redis away)
    paused_until: float = 0.0  # monotonic; a pause known here (own, or seen in Redis)
    checked_at: float = float("-inf")  # monotonic; hosts without a rate: the last pause check


def host_rate(settings: Any) -> float:
    """Requests per second per host for the cluster: ``CLUSTER_HOST_RATE`` or ``1 / DOWNLOAD_DELAY``.

    Both are checked (finite, ≥ 0): a nan rate would make every request's turn fail.
    """
    value = settings.get("CLUSTER_HOST_RATE")
    if value is None or value == "":
        delay = float_setting(settings, "DOWNLOAD_DELAY", 0.0, at_least=0, meaning="seconds")
        return 1 / delay if delay > 0 else 0.0
    return float_setting(
        settings, "CLUSTER_HOST_RATE", 0.0, at_least=0, meaning="requests/s per host; 0: no limit"
    )


def crawl_delay_max(settings: Any) -> float:
    """``CLUSTER_CRAWL_DELAY_MAX``, checked (finite, ≥ 0)."""
    return float_setting(
        settings,
        "CLUSTER_CRAWL_DELAY_MAX",
        DEFAULTS["CLUSTER_CRAWL_DELAY_MAX"],
        at_least=0,
        meaning="seconds; 0: ignore robots.txt Crawl-delay",
    )


class ClusterRateLimitMiddleware:
    """Downloader middleware: every request waits for its host's turn, shared by all workers."""

    def __init__(
        self,
        crawler: Crawler,
        server: redis.Redis,
        rate: float,
        crawl_delay_max: float,
        key_template: str,
    ) -> None:
        self.crawler = crawler
        assert crawler.stats is not None
        self.stats = crawler.stats
        self.server = server
        self.where = describe(crawler.settings)
        self.rate_interval = 1 / rate if rate > 0 else 0.0
        self.crawl_delay_max = crawl_delay_max
        assert crawler.spidercls is not None
        self.spider_name = crawler.spidercls.name
        self.key_template = key_template
        self.user_agent: str = crawler.settings.get("ROBOTSTXT_USER_AGENT") or crawler.settings.get(
            "USER_AGENT", ""
        )
        self.hosts: defaultdict[str, HostState] = defaultdict(HostState)
        self._turn = server.register_script(_LUA_TURN)
        self._pause = server.register_script(_LUA_PAUSE)
        self.outage = Outage(
            self.where,
            gone="Host pacing: Redis at {where} is unreachable ({error}) — each worker paces hosts alone, at "
            "the cluster's rate, until it is back",
            back="Host pacing: Redis at {where} is back after {seconds:.1f} s: hosts are paced for the whole "
            "cluster again",
            logger=logger,
            retry_base=RETRY_BASE,
            retry_max=RETRY_MAX,
        )

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ClusterRateLimitMiddleware:
        settings = crawler.settings
        # checked in every crawl, shared or not: a bad value is refused at start-up, not when
        # REDIS_URL is set some day
        rate, delay_max = host_rate(settings), crawl_delay_max(settings)
        if not redis_configured(settings):
            raise NotConfigured  # no message: a crawl alone keeps Scrapy's per-process politeness
        middleware = cls(
            crawler,
            redis_from_settings(settings),
            rate,
            delay_max,
            str(settings.get("CLUSTER_HOST_KEY") or DEFAULTS["CLUSTER_HOST_KEY"]),
        )
        crawler.signals.connect(middleware.robots_parsed, signal=signals.robots_parsed)
        crawler.signals.connect(middleware.host_paused, signal=host_paused)
        return middleware

    def key(self, host: str) -> str:
        """The Redis hash of ``host`` (named by :func:`.host_names.request_host`: the shared queue's pop
        reads the same hash, for the pace and pauses it hands the host's requests out by)."""
        return self.key_template % {"spider": self.spider_name, "host": host}

    def interval(self, host: str) -> float:
        """Seconds between two requests to ``host`` from the whole cluster (0: not paced)."""
        return max(self.rate_interval, self.hosts[host].crawl_delay)

    # -- signals -----------------------------------------------------------------------

    def robots_parsed(self, robotparser: RobotParser, request: Request) -> None:
        """Take the host's Crawl-delay from the robots.txt Scrapy fetched anyway (RobotsTxtMiddleware)."""
        delay = robotparser.crawl_delay(self.user_agent)
        if not delay or delay <= 0:
            return
        host = request_host(request)
        capped = min(float(delay), self.crawl_delay_max)
        self.hosts[host].crawl_delay = capped
        logger.info(
            "robots.txt of %s asks for Crawl-delay: %g s%s; the cluster sends it one request every %.3g s",
            host,
            delay,
            f" (capped at CLUSTER_CRAWL_DELAY_MAX = {self.crawl_delay_max:g} s)" if capped < delay else "",
            self.interval(host),
        )

    def host_paused(self, request: Request, seconds: float, reason: str) -> None:
        """This worker's backoff paused a host: pause it for the whole cluster."""
        host = request_host(request)
        state = self.hosts[host]
        state.paused_until = max(state.paused_until, time.monotonic() + seconds)
        if self.outage.down:
            return
        try:
            published = self._pause(keys=[self.key(host)], args=[round(seconds * 1e6), reason, KEY_TTL_MS])
        except redis.RedisError as error:
            self._unreachable(error)
            return
        if published:
            self.stats.inc_value(f"{STATS}pauses_published")

    # -- requests ----------------------------------------------------------------------

    async def process_request(self, request: Request) -> None:
        host = request_host(request)
        interval = self.interval(host)
        state = self.hosts[host]
        started = time.monotonic()
        if interval <= 0:
            paused = await self._honour_pause(host, state)
        else:
            # one turn reserved at a time per host in this worker; the lock queues the rest in order
            await maybe_deferred_to_future(state.lock.acquire())
            try:
                paused = await self._take_turn(host, state, interval)
            finally:
                state.lock.release()
        waited = time.monotonic() - started
        if waited >= 0.001:
            self.stats.inc_value(f"{STATS}waits")
            self.stats.inc_value(f"{STATS}waited_ms", round(waited * 1000))
        if paused:
            self.stats.inc_value(f"{STATS}paused_by_cluster")

    async def _take_turn(self, host: str, state: HostState, interval: float) -> bool:
        """Wait for a turn reserved in Redis (or a local one while Redis is away); True if paused."""
        paused = False
        interval_us = round(interval * 1e6)
        while True:
            not_before_us = max(0, round((state.local_next - time.monotonic()) * 1e6))
            reply = await self._call(self._turn, host, interval_us, "1", not_before_us)
            if reply is None:
                await self._pace_locally(state, interval)
                return paused
            pause_us, turn_us = reply
            if pause_us > 0:
                paused = await self._wait_pause(state, pause_us / 1e6) or paused
                continue
            # this worker's own schedule: local pacing carries on from it should Redis go away, and
            # the first turn taken from Redis once it is back respects it
            state.local_next = time.monotonic() + max(0, turn_us) / 1e6 + interval
            if turn_us <= 0:
                return paused
            await sleep(turn_us / 1e6)
            # another worker may have paused the host while this one waited for its turn
            reply = await self._call(self._turn, host, interval_us, "0", 0)
            if reply is None or reply[0] <= 0:
                return paused
            paused = await self._wait_pause(state, reply[0] / 1e6) or paused

    async def _honour_pause(self, host: str, state: HostState) -> bool:
        """A host without a rate: wait out a cluster pause, looked up at most every 0.25 s."""
        now = time.monotonic()
        if now - state.checked_at >= PAUSE_CHECK_INTERVAL:
            state.checked_at = now
            reply = await self._call(self._turn, host, 0, "0", 0)
            if reply is not None and reply[0] > 0:
                state.paused_until = max(state.paused_until, now + reply[0] / 1e6)
        if state.paused_until <= time.monotonic():
            return False
        await sleep(state.paused_until - time.monotonic())
        return True

    async def _wait_pause(self, state: HostState, seconds: float) -> bool:
        state.paused_until = max(state.paused_until, time.monotonic() + seconds)
        logger.debug("Waiting %.2f s: the host is paused for the whole cluster", seconds)
        await sleep(seconds)
        return True

    async def _pace_locally(self, state: HostState, interval: float) -> None:
        """Redis is away: this worker alone keeps the interval (and the pauses it knows of)."""
        now = time.monotonic()
        turn = max(state.local_next, state.paused_until, now)
        state.local_next = turn + interval
        if turn > now:
            await sleep(turn - now)

    # -- Redis, and riding out its absence --------------------------------------------

    async def _call(self, script: Callable[..., Any], host: str, *args: Any) -> tuple[int, int] | None:
        """One script call; None while Redis is unreachable (tried again from a thread, now and then)."""
        try:
            if not self.outage.down:
                reply = script(keys=[self.key(host)], args=[*args, KEY_TTL_MS])
            elif not self.outage.may_try():
                return None
            else:  # in a thread: a vanished host may take the whole connect timeout
                reply = await run_in_thread(script, keys=[self.key(host)], args=[*args, KEY_TTL_MS])
                self.outage.recovered()
        except redis.RedisError as error:
            self._unreachable(error)
            return None
        return int(reply[0]), int(reply[1])

    def _unreachable(self, error: BaseException) -> None:
        self.stats.inc_value(f"{STATS}redis_errors")
        self.outage.failed(error)
