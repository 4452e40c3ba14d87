"""When a shared crawl is over: the seed marker, one atomic look at the cluster, and one clean-up.

:class:`CrawlState` answers from one Redis read whether the crawl goes on, is finished (seeded and
idle for ``SCHEDULER_IDLE_BEFORE_CLOSE`` s) or waits for a seed, and deletes a finished crawl's state
once; :class:`IdlePolls` paces an idle worker's polls.

Design notes: docs/framework-design.md#finishing.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import redis

from scrapy_sharedcrawl.defaults import SETTINGS as DEFAULTS
from scrapy_sharedcrawl.dupefilter import CompactRFPDupeFilter, MalformedLayout
from scrapy_sharedcrawl.keys import LUA_LEASED, LUA_QUEUED, QueueKeys

logger = logging.getLogger(__name__)

#: First pause (s) between polls of an idle worker; it doubles up to the cap.
POLL_BASE = 0.25
#: Cap (s) of the pause while other workers hold leases (their pages may yield requests).
BUSY_POLL_MAX = 1.0
#: Finished crawl ids remembered (a worker that missed a whole crawl still learns it ended).
FINISHED_KEPT = 100
#: Keys deleted per UNLINK inside the finalize script (Lua's unpack has a stack limit).
_UNLINK_CHUNK = 1000

#: KEYS: 1 queue's count, 2 lease counter, 3 seeded, 4 finished. ARGV: 1 our crawl id ("" none), 2
#: reference ms. → {queued, leased, seeded id or nil, our crawl finished (0/1), a crawl finished since
#: ARGV[2] (0/1), server ms}.
_LUA_STATUS = (
    LUA_QUEUED
    + LUA_LEASED
    + """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ours = 0
if ARGV[1] ~= '' and redis.call('ZSCORE', KEYS[4], ARGV[1]) then ours = 1 end
local since = 0
if #redis.call('ZRANGEBYSCORE', KEYS[4], '(' .. ARGV[2], '+inf', 'LIMIT', 0, 1) > 0 then since = 1 end
return {queued_count(KEYS[1]), leased_count(KEYS[2]), redis.call('GET', KEYS[3]), ours, since,
        now}
"""
)

#: KEYS[1] = seeded. ARGV[1] = a new crawl id. → the crawl id in force (the existing one, if any).
_LUA_MARK_SEEDED = """
local id = redis.call('GET', KEYS[1])
if id then return id end
redis.call('SET', KEYS[1], ARGV[1])
return ARGV[1]
"""

#: KEYS: 1 queue's count, 2 lease counter, 3 seeded, 4 finished, 5…(4 + ARGV[5]) state to delete, the first
#: ARGV[6] of them SETs holding one URL a member (the dupefilter's shards); then optionally the shared
#: stats' meta hash, where the URLs seen are recorded (``seen``, ``seen_exact``) if it exists, and a key
#: that exists while the dupefilter does (none: the filter is not shared, nothing to record).
#: ARGV: 1 crawl id ("" = a crawl that was never marked), 2 "1" to keep the state (SCHEDULER_PERSIST),
#: 3 finished ids kept, 4 keys per UNLINK, 5 state keys, 6 SETs to count, 7 the URLs seen as counted by
#: the caller ("" = the SETs' sizes summed here), 8 "1" if that count is exact.
#: → 1 if this call finished the crawl, 0 if the cluster is busy or another worker finished it.
_LUA_FINALIZE = (
    LUA_QUEUED
    + LUA_LEASED
    + """
if queued_count(KEYS[1]) > 0 or leased_count(KEYS[2]) > 0 then return 0 end
local marked = redis.call('GET', KEYS[3])
if ARGV[1] == '' then
  if marked then return 0 end
else
  if marked ~= ARGV[1] then return 0 end
  local t = redis.call('TIME')
  redis.call('DEL', KEYS[3])
  redis.call('ZADD', KEYS[4], tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000), ARGV[1])
  redis.call('ZREMRANGEBYRANK', KEYS[4], 0, -1 - tonumber(ARGV[3]))
end
local last = 4 + tonumber(ARGV[5])
local meta, filter = KEYS[last + 1], KEYS[last + 2]
if meta and redis.call('EXISTS', meta) == 1 then
  if not filter then
    redis.call('HDEL', meta, 'seen', 'seen_exact')  -- no shared filter: no figure, not an older crawl's
  elseif redis.call('EXISTS', filter) == 1 then  -- gone: an earlier finalize counted it, its figure stays
    local seen, exact = ARGV[7], ARGV[8]
    if seen == '' then
      local n = 0
      for i = 5, 4 + tonumber(ARGV[6]) do n = n + redis.call('SCARD', KEYS[i]) end
      seen, exact = string.format('%d', n), '1'
    end
    redis.call('HSET', meta, 'seen', seen, 'seen_exact', exact)
  end
end
if ARGV[2] ~= '1' then
  local chunk = tonumber(ARGV[4])
  for i = 5, last, chunk do
    redis.call('UNLINK', unpack(KEYS, i, math.min(i + chunk - 1, last)))
  end
end
return 1
"""
)


def new_crawl_id() -> str:
    """A crawl id an operator can read: when it was seeded (UTC), and a random tail."""
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + os.urandom(3).hex()


@dataclass(frozen=True)
class ClusterStatus:
    """One atomic look at the shared crawl."""

    queued: int
    leased: int
    #: The crawl marked as seeded, None if none is.
    seeded: str | None
    #: The crawl id asked about is in the finished record.
    ours_finished: bool
    #: Some crawl finished after the reference time asked about.
    finished_since: bool
    #: Redis server time, ms.
    server_ms: int

    @property
    def busy(self) -> bool:
        return bool(self.queued or self.leased)


@dataclass(frozen=True)
class SeenRecord:
    """How :meth:`CrawlState.finalize` counts the URLs the dupefilter holds, to leave them in the shared
    stats before it deletes the filter: a status tool shows them after the crawl."""

    #: The shared stats' meta hash (:attr:`.keys.CrawlKeys.meta`). Written only if it exists: the
    #: figure lives and expires with the stats it belongs to.
    meta_key: str
    #: A key that exists while the filter does (its layout hash): without it there is nothing to count,
    #: and the figure an earlier finalize left stays. None: the filter is not shared (no figure at all).
    filter_key: str | None = None
    #: SETs holding one URL a member (the dupefilter's shards), summed in the script: exact. Part of
    #: the crawl's state (deleted with it).
    sets: Sequence[str] = ()
    #: Or the URLs as counted by the caller, and whether that is exact (a Bloom filter's estimate).
    counted: tuple[int, bool] | None = None

    @classmethod
    def of(cls, dupefilter: object, meta_key: str) -> SeenRecord:
        """How to count ``dupefilter``. A :class:`.CompactRFPDupeFilter` without a stored layout holds
        nothing, and none is created just to count it."""
        if isinstance(dupefilter, CompactRFPDupeFilter):
            try:
                layout = dupefilter.read_stored_layout()
            except (MalformedLayout, redis.ResponseError) as error:  # logged and counted: no figure
                dupefilter.report_malformed(f"{type(error).__name__}: {error}"[:300])
                return cls(meta_key)
            if layout is None:
                return cls(meta_key, dupefilter.meta_key)
            if layout.mode == "bloom":  # its estimate needs Python: counted now, the cluster is idle
                return cls(meta_key, dupefilter.meta_key, counted=dupefilter.count())
            return cls(meta_key, dupefilter.meta_key, sets=dupefilter.shard_keys(layout))
        if isinstance(key := getattr(dupefilter, "key", None), str):
            return cls(meta_key, key, sets=[key])  # scrapy-redis's own filter: one SET of fingerprints
        return cls(meta_key)  # a process-local filter (Scrapy's own): nothing shared to count


class CrawlState:
    """The seed marker, the finished record and the finalize step, in Redis (see the module docstring)."""

    def __init__(self, server: redis.Redis, queue_key: str) -> None:
        self.server = server
        named = QueueKeys(queue_key)
        self.count_key, self.leased_key = named.count, named.leased
        self.seeded_key, self.finished_key = named.seeded, named.finished
        self._status = server.register_script(_LUA_STATUS)
        self._mark = server.register_script(_LUA_MARK_SEEDED)
        self._finalize = server.register_script(_LUA_FINALIZE)
        #: Redis round trips made so far.
        self.round_trips = 0

    def status(self, crawl_id: str | None = None, since_ms: int = 0) -> ClusterStatus:
        """Queue sizes, the seed marker, and whether ``crawl_id`` (or any crawl after ``since_ms``) ended."""
        self.round_trips += 1
        queued, leased, seeded, ours, since, now = self._status(
            keys=[self.count_key, self.leased_key, self.seeded_key, self.finished_key],
            args=[crawl_id or "", since_ms],
        )
        return ClusterStatus(int(queued), int(leased), _text(seeded), bool(ours), bool(since), int(now))

    def mark_seeded(self) -> str:
        """Mark the crawl as seeded (call after pushing its requests); the id of the crawl in force."""
        self.round_trips += 1
        crawl_id = _text(self._mark(keys=[self.seeded_key], args=[new_crawl_id()]))
        assert crawl_id is not None
        return crawl_id

    def seeded(self) -> str | None:
        """The crawl marked as seeded, if any."""
        self.round_trips += 1
        return _text(self.server.get(self.seeded_key))

    def finalize(
        self,
        crawl_id: str | None,
        keep: bool,
        state_keys: Sequence[str],
        seen: SeenRecord | None = None,
    ) -> bool:
        """Record ``crawl_id`` as finished and delete ``state_keys`` (unless ``keep``), atomically, if
        nothing is queued or leased and the crawl is still marked; True if this call did it.

        ``crawl_id`` None: a crawl that was never marked; its state is deleted only if no crawl is marked.
        ``seen``: first record the URLs the dupefilter holds in the shared stats, in the same script (kept
        or deleted, the figure is the finished crawl's; nothing new can arrive while the cluster is idle).
        """
        self.round_trips += 1
        sets = list(seen.sets) if seen is not None else []
        counted = set(sets)
        delete = [*sets, *(key for key in state_keys if key not in counted)]
        keys = [self.count_key, self.leased_key, self.seeded_key, self.finished_key, *delete]
        count: int | str = ""
        exact = True
        if seen is not None:
            keys.append(seen.meta_key)
            if seen.filter_key is not None:
                keys.append(seen.filter_key)
            if seen.counted is not None:
                count, exact = seen.counted
        args = [
            crawl_id or "",
            "1" if keep else "0",
            FINISHED_KEPT,
            _UNLINK_CHUNK,
            len(delete),
            len(sets),
            count,
            "1" if exact else "0",
        ]
        return bool(self._finalize(keys=keys, args=args))


class Verdict(StrEnum):
    """What an idle worker should do, from a :class:`ClusterStatus`."""

    #: Something is queued or leased somewhere, or the cluster has not been idle long enough: stay.
    BUSY = "busy"
    #: No crawl is seeded: wait for one.
    WAIT = "wait"
    #: The crawl is over: close (finite mode) or clean up and wait for the next (continuous).
    FINISHED = "finished"
    #: Finite mode: no crawl was seeded within ``SCHEDULER_WAIT_FOR_SEED``: close.
    NO_SEED = "no_seed"


class Finisher:
    """Turns cluster statuses into verdicts, and logs what an operator wants to know, once each."""

    def __init__(
        self,
        where: str,
        *,
        continuous: bool = DEFAULTS["SCHEDULER_CONTINUOUS"],
        wait_for_seed: float = DEFAULTS["SCHEDULER_WAIT_FOR_SEED"],
        idle_before_close: float = DEFAULTS["SCHEDULER_IDLE_BEFORE_CLOSE"],
        seed_hint: str = DEFAULTS["SCHEDULER_SEED_HINT"],
        clock: Any = time.monotonic,
    ) -> None:
        self.where = where
        #: How an operator seeds this crawl, named in the log lines of a waiting worker.
        self.seed_hint = seed_hint
        self.continuous = continuous
        self.wait_for_seed = wait_for_seed
        self.idle_before_close = idle_before_close
        self._clock = clock
        #: The crawl this worker takes part in (from the seed marker), None before it saw one.
        self.crawl_id: str | None = None
        #: This worker saw work in the shared queue (a crawl seeded without a marker counts as seeded).
        self.seen_work = False
        #: Redis server time (ms) from which a finished crawl is one this worker waited for.
        self.reference_ms: int | None = None
        #: The last FINISHED verdict saw the crawl's state still there: this worker may clean it up.
        self.should_finalize = False
        self._waiting_since = clock()
        self._empty_since: float | None = None
        self._logged_wait = False

    def adopt(self, crawl_id: str | None) -> None:
        """The seed marker says ``crawl_id``: this worker takes part in that crawl."""
        if crawl_id is None or crawl_id == self.crawl_id:
            return
        self.crawl_id = crawl_id
        self.seen_work = True
        self._logged_wait = False
        logger.info("Taking part in crawl %s at %s", crawl_id, self.where)

    def saw_work(self) -> None:
        self.seen_work = True
        self._empty_since = None

    def judge(self, status: ClusterStatus) -> Verdict:
        """The verdict on ``status`` (see the module docstring)."""
        now = self._clock()
        if self.reference_ms is None:
            self.reference_ms = status.server_ms
        self.should_finalize = False
        self.adopt(status.seeded)
        if status.busy:
            self.saw_work()
            return Verdict.BUSY
        if status.seeded is not None:  # marked, and nothing queued or leased anywhere
            if self._empty_since is None:
                self._empty_since = now
            if now - self._empty_since < self.idle_before_close:
                return Verdict.BUSY
            self.should_finalize = True
            return Verdict.FINISHED
        self._empty_since = None
        if self.crawl_id is not None:
            if status.ours_finished:
                return Verdict.FINISHED  # another worker finished it
            logger.warning(
                "Crawl %s is no longer in Redis at %s and no worker finished it (did Redis restart without "
                "persistence?): whatever was queued is lost — seed the crawl again",
                self.crawl_id,
                self.where,
            )
            self.restart_waiting(status.server_ms)
        elif self.seen_work:
            self.should_finalize = True  # a crawl seeded without a marker (tools, tests) is over
            return Verdict.FINISHED
        elif status.finished_since:
            return Verdict.FINISHED  # a crawl was seeded and finished between two polls of this worker
        return self._wait(now)

    def _wait(self, now: float) -> Verdict:
        if not self.continuous and now - self._waiting_since >= self.wait_for_seed:
            logger.warning(
                "No crawl was seeded at %s within %.0f s (SCHEDULER_WAIT_FOR_SEED): closing (finish reason "
                "no_seed). Seed one with %s, then start workers",
                self.where,
                self.wait_for_seed,
                self.seed_hint,
            )
            return Verdict.NO_SEED
        if not self._logged_wait:
            self._logged_wait = True
            if self.continuous:
                logger.info(
                    "Waiting for a seed at %s (continuous mode: seed with %s any time)",
                    self.where,
                    self.seed_hint,
                )
            else:
                logger.info(
                    "No crawl seeded at %s yet: waiting up to %.0f s (SCHEDULER_WAIT_FOR_SEED) for %s",
                    self.where,
                    max(0.0, self.wait_for_seed - (now - self._waiting_since)),
                    self.seed_hint,
                )
        return Verdict.WAIT

    def restart_waiting(self, server_ms: int) -> None:
        """Forget the crawl (it is over, or gone) and wait for the next seed."""
        self.crawl_id = None
        self.seen_work = False
        self.should_finalize = False
        self.reference_ms = server_ms
        self._waiting_since = self._clock()
        self._empty_since = None
        self._logged_wait = False


class IdlePolls:
    """When an idle worker asks Redis for work again: pauses doubling from :data:`POLL_BASE` to a cap.

    ``idle`` is set when a pop finds nothing while this worker holds no lease;
    from then on the scheduler answers the engine without Redis until
    :meth:`due`. Any request this worker leases or pushes makes it busy again.
    """

    def __init__(self, cap: float, busy_cap: float = BUSY_POLL_MAX, base: float = POLL_BASE) -> None:
        if cap <= 0:
            raise ValueError("SCHEDULER_IDLE_POLL_MAX must be positive")
        self.cap = cap
        self.busy_cap = min(busy_cap, cap)
        self.base = min(base, self.busy_cap)
        self.idle = False
        #: A pop found nothing: the next ``has_pending_requests`` reads the cluster status.
        self.status_due = True
        self.polls = 0
        self._interval = self.base
        self._next_at = 0.0
        #: When a host of the queue waiting for its rate or a pause is due (monotonic s): polled then,
        #: however long the pause between polls has grown.
        self._host_due = float("inf")

    def busy(self) -> None:
        """This worker has work: ask Redis whenever the engine asks."""
        self.idle = False
        self._interval = self.base
        self._host_due = float("inf")

    def host_due(self, at: float) -> None:
        """A pop found no host ready, one waiting is due at ``at`` (monotonic s): poll again then."""
        self._host_due = at

    def missed(self) -> None:
        """A pop found nothing while this worker held no lease."""
        self.idle = True
        self.status_due = True

    def due(self, now: float) -> bool:
        """True when Redis may be asked now."""
        return not self.idle or now >= min(self._next_at, self._host_due)

    def poll_now(self) -> None:
        """Make the next poll due at once (a heartbeat that would otherwise come a little late)."""
        self._next_at = 0.0

    def polled(self, now: float, patient: bool) -> float:
        """A status was read: schedule the next poll (``patient``: nothing is seeded, use the long cap)."""
        self.polls += 1
        self.status_due = False
        cap = self.cap if patient else self.busy_cap
        pause = min(cap, self._interval)
        self._next_at = now + pause
        self._interval = min(cap, self._interval * 2)
        return pause


def _text(value: bytes | str | None) -> str | None:
    if value is None:
        return None
    return value.decode() if isinstance(value, bytes) else value
