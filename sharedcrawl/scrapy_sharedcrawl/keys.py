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
        """ZSET: ``"<id> <payload>"`` → priority score, the requests waiting."""
        return f"{self.base}:queue"

    @property
    def payloads(self) -> str:
        """HASH: request id → encoded request, for the requests leased out."""
        return f"{self.base}:payloads"

    @property
    def leases(self) -> str:
        """ZSET: request id → lease expiry (ms, Redis time)."""
        return f"{self.base}:leases"

    @property
    def owners(self) -> str:
        """HASH: request id → the worker holding its lease."""
        return f"{self.base}:owners"

    @property
    def requeued(self) -> str:
        """HASH: request id → queue member, for requests put back after their lease ended."""
        return f"{self.base}:requeued"

    @property
    def seq(self) -> str:
        """STRING: the last request id handed out."""
        return f"{self.base}:seq"

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
        """The keys every queue script touches, in the order the scripts take them."""
        return [self.queue, self.payloads, self.leases, self.owners, self.requeued]


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
        return self.queue_keys.queue

    @property
    def leases(self) -> str:
        return self.queue_keys.leases

    @property
    def seen_meta(self) -> str:
        return dupefilter_meta(self.seen)
