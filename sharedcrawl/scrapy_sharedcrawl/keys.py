"""The crawl's Redis keys, named in one place, and this worker's id.

A crawl (one spider name) owns three families of keys, each under a base set by a
setting: the leased queue's (``SCHEDULER_QUEUE_KEY``, ``{<spider>}:requests``), the
dupefilter's (``SCHEDULER_DUPEFILTER_KEY``, ``{<spider>}:seen``) and the rest
(``CRAWL_KEY_PREFIX``, ``{<spider>}``: shared stats, per-minute pages, worker registry).
The bases share a ``{…}`` hash tag, a naming habit that costs nothing; the crawl runs on
a standalone Redis (the client is a plain ``redis.Redis``), not on Redis Cluster.
Components build their key names here, so that ``status``, the seeder and the workers
can never disagree on one.
"""

from __future__ import annotations

import functools
import os
import socket
from dataclasses import dataclass

from scrapy.crawler import Crawler
from scrapy.settings import BaseSettings

from scrapy_sharedcrawl.config import setting
from scrapy_sharedcrawl.defaults import SETTINGS as DEFAULTS

#: Requests queued, from the count key KEYS[n] (its name ends in ``count``): when a stranger left it
#: unreadable, at least one per host in ``ready`` and ``wait`` (named from it), so that a queue with
#: hosts is never taken as empty. For every script that asks whether anything is queued (:mod:`.queue`,
#: :mod:`.finishing`, :mod:`.stats`, :mod:`.timeseries`).
LUA_QUEUED = """
local function queued_count(count_key)
  local n = tonumber(redis.call('GET', count_key) or '0')
  if n and n >= 0 then return n end
  local base = string.sub(count_key, 1, -6)
  return redis.call('ZCARD', base .. 'ready') + redis.call('ZCARD', base .. 'wait')
end
"""

#: Requests leased, from the lease counter KEYS[n] (its name ends in ``leased``): the counter while a
#: worker holds leases (``holders``, named from it, is not empty), at least one per holder when a
#: stranger left it unreadable or low, 0 when nobody holds one (a counter left behind is no lease); plus
#: the previous release's leases (ZSET ``leases``: an upgrade made while some were out). For every
#: script that asks whether anything is leased (:mod:`.queue`, :mod:`.finishing`, :mod:`.stats`,
#: :mod:`.timeseries`); :func:`leased_total` is the same for a reader without a script.
LUA_LEASED = """
local function leased_count(leased_key)
  local base = string.sub(leased_key, 1, -7)
  local holders = redis.call('ZCARD', base .. 'holders')
  local n = 0
  if holders > 0 then
    n = tonumber(redis.call('GET', leased_key) or '0')
    if not n or n < holders then n = holders end
  end
  return math.floor(n) + redis.call('ZCARD', base .. 'leases')
end
"""


def leased_total(counter: int | None, holders: int, previous: int) -> int:
    """:data:`LUA_LEASED` from its three readings: the counter (None: unreadable), the ZCARD of
    ``holders`` and of the previous release's ``leases``.

    >>> leased_total(12, 2, 0), leased_total(None, 2, 0), leased_total(7, 0, 3)
    (12, 2, 3)
    """
    return (max(counter or 0, holders) if holders else 0) + previous


#: The shared bucket's name among the hosts: requests of hosts without a queue of their own wait in
#: its LISTs (``q:<priority>:*``), oldest first. ``*`` is never a host's name (:func:`.host_names.queue_host`
#: escapes it), and a worker of the release before the bucket serves it as one more host.
BUCKET = "*"


@functools.cache
def this_worker() -> str:
    """This process's name in the shared stats and the worker registry: ``host:pid:random``."""
    return f"{socket.gethostname()}:{os.getpid()}:{os.urandom(3).hex()}"


@dataclass(frozen=True)
class QueueKeys:
    """The leased queue's keys under its base (see :mod:`.queue` for what each holds)."""

    base: str

    @property
    def queue(self) -> str:
        """STRING: the layout marker (:data:`.queue.LAYOUT`), set by every push. An earlier release kept
        its ZSET of requests here: a worker of that release meets a string and fails (WRONGTYPE) instead
        of queueing requests nobody reads; such a ZSET found here is moved at open. The release just
        before marked it :data:`.queue.PREVIOUS_LAYOUT` (whole payloads), which a worker re-marks at open."""
        return f"{self.base}:queue"

    def lease(self, worker: str) -> str:
        """HASH: request id → ``"<priority> <host> <payload>"``, the requests ``worker`` holds: where
        each goes back, and what it is."""
        return f"{self.base}:lease:{worker}"

    @property
    def holders(self) -> str:
        """ZSET: worker → when its leases expire (ms, Redis time), for every worker holding one."""
        return f"{self.base}:holders"

    @property
    def leased(self) -> str:
        """STRING: requests leased, kept by every script that leases one or ends a lease."""
        return f"{self.base}:leased"

    @property
    def payloads(self) -> str:
        """HASH: request id → encoded request, for the requests a previous release leased out (and
        for queue members of an older one that are only an id). Read, never written."""
        return f"{self.base}:payloads"

    @property
    def leases(self) -> str:
        """ZSET: request id → lease expiry (ms, Redis time), of a previous release's leases. Read (they
        are requeued when they expire), never written."""
        return f"{self.base}:leases"

    @property
    def owners(self) -> str:
        """HASH: request id → ``"<priority> <host>|<worker>"`` of a previous release's leases: where
        each goes back. Read, never written."""
        return f"{self.base}:owners"

    @property
    def requeued(self) -> str:
        """HASH: request id → ``"<priority> <host> <member>"``, for requests put back after their lease
        ended (a late acknowledgement still finds and removes them); ``"@<worker>"`` once ``worker``
        leased one again, until it is done with it (the first holder's acknowledgement is then stale)."""
        return f"{self.base}:requeued"

    @property
    def count(self) -> str:
        """STRING: requests queued (not leased), kept by every script that queues or takes one."""
        return f"{self.base}:count"

    @property
    def ready(self) -> str:
        """ZSET: host → ``-best priority·2³² + seq``: hosts that may be handed out now, best first."""
        return f"{self.base}:ready"

    @property
    def wait(self) -> str:
        """ZSET: host → when it may be handed out again (ms, Redis time): its rate, or a pause."""
        return f"{self.base}:wait"

    @property
    def hosts(self) -> str:
        """HASH: host → ``"<next ms> <priority> <priority>…"``: its schedule and its priority levels,
        best first. A host is here (and in ``ready`` or ``wait``) while it has requests queued."""
        return f"{self.base}:hosts"

    def host_queue(self, priority: int, host: str) -> str:
        """LIST: ``"<id> <payload>"`` of ``host`` at ``priority``, oldest first."""
        return f"{self.base}:q:{priority}:{host}"

    @property
    def recent(self) -> str:
        """ZSET: host → when its turn ends (ms, Redis time), for a paced host whose next time ``hosts``
        keeps while it has no queue of its own (its requests in the shared bucket): forgotten then."""
        return f"{self.base}:recent"

    @property
    def seq(self) -> str:
        """STRING: the last sequence number given to a host entering ``ready``."""
        return f"{self.base}:seq"

    @property
    def unchecked(self) -> str:
        """SET: ids queued without a dupefilter check (``dont_filter``), from their push to their
        acknowledgement, so a push retried while they are queued or leased is a no-op."""
        return f"{self.base}:unchecked"

    @property
    def dead(self) -> str:
        """HASH: dead letters, request id → why the payload was refused."""
        return f"{self.base}:dead"

    @property
    def seeded(self) -> str:
        """STRING: the crawl's id, set once its seed is in (:mod:`.finishing`)."""
        return f"{self.base}:seeded"

    @property
    def finished(self) -> str:
        """STRING: the id of the crawl last recorded as finished."""
        return f"{self.base}:finished"

    @property
    def core(self) -> list[str]:
        """The keys every queue script takes, in the order the scripts take them (the per-host lists,
        the per-worker lease hashes and a previous release's ``leases`` and ``owners`` are named in the
        scripts from the marker's name: the crawl runs on a standalone Redis)."""
        return [
            *(self.queue, self.payloads, self.holders, self.leased, self.requeued, self.count),
            *(self.ready, self.wait, self.hosts, self.seq, self.unchecked),
        ]

    @property
    def state(self) -> list[str]:
        """The keys deleted with the crawl (the per-host lists and per-worker lease hashes are empty,
        hence gone, when nothing is queued or leased); the layout marker too: the next push sets it
        again."""
        return [*self.core, self.recent, self.leases, self.owners]


def dupefilter_meta(base: str) -> str:
    """HASH: the dupefilter's stored layout (mode, shards, capacity); shards are named from it."""
    return f"{base}:meta"


@dataclass(frozen=True)
class CrawlKeys:
    """The Redis keys of one crawl, for the components that write them and the tools that read them."""

    spider: str
    queue: str  # the leased queue's base key
    seen: str  # the dupefilter's base key
    prefix: str

    @classmethod
    def from_settings(cls, settings: BaseSettings, spider: str) -> CrawlKeys:
        names = {"spider": spider}
        return cls(
            spider=spider,
            queue=str(setting(settings, "SCHEDULER_QUEUE_KEY", DEFAULTS)) % names,
            seen=str(setting(settings, "SCHEDULER_DUPEFILTER_KEY", DEFAULTS)) % names,
            prefix=str(setting(settings, "CRAWL_KEY_PREFIX", DEFAULTS)) % names,
        )

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> CrawlKeys:
        """The keys of ``crawler``'s crawl, as its stats collector names them."""
        spider = crawler.spidercls.name if crawler.spidercls is not None else "default"
        return cls.from_settings(crawler.settings, spider)

    @property
    def queue_keys(self) -> QueueKeys:
        return QueueKeys(self.queue)

    @property
    def stats(self) -> str:
        """HASH: counter → sum over every worker."""
        return f"{self.prefix}:stats"

    @property
    def meta(self) -> str:
        """HASH: started_at, updated_at, finished_at (Unix s, Redis time), seq:<worker>; and ``seen``,
        ``seen_exact``: the URL count the worker that deletes the dupefilter at the end leaves behind."""
        return f"{self.prefix}:stats:meta"

    def pages(self, minute: int) -> str:
        """STRING: responses received during Unix minute ``minute`` (``time // 60``) by every worker."""
        return f"{self.prefix}:pages:{minute}"

    @property
    def workers(self) -> str:
        """ZSET: worker id → last heartbeat (ms, Redis time)."""
        return f"{self.prefix}:workers"

    @property
    def worker_info(self) -> str:
        """HASH: worker id → JSON (host, pid, start, pages, items)."""
        return f"{self.prefix}:workers:info"

    @property
    def queued(self) -> str:
        """STRING: how many requests are queued (:attr:`QueueKeys.count`)."""
        return self.queue_keys.count

    @property
    def leased(self) -> str:
        """STRING: how many requests are leased (:attr:`QueueKeys.leased`, read with :data:`LUA_LEASED`)."""
        return self.queue_keys.leased

    @property
    def seen_meta(self) -> str:
        return dupefilter_meta(self.seen)
