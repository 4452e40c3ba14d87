"""Feeding a crawl by hand, as scrapy-redis users do: ``LPUSH <spider>:start_urls URL``.

Each worker's scheduler reads the start-URLs key (list, set or sorted set) under a claim, queues
the requests its entries make and removes an entry only once its request is in the shared queue;
a bad entry or a key of the wrong type is logged once and counted, and the intake goes on.

Design notes: docs/framework-design.md#start_urls.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from typing import Any

import redis
from redis.exceptions import LockNotOwnedError
from redis.lock import Lock
from scrapy import Request, Spider
from scrapy.settings import BaseSettings
from scrapy.statscollectors import StatsCollector

from scrapy_sharedcrawl.config import bool_setting, setting
from scrapy_sharedcrawl.defaults import SETTINGS as DEFAULTS
from scrapy_sharedcrawl.outage import OncePerReason
from scrapy_sharedcrawl.scheduler.prefix import STATS as SCHEDULER_STATS
from scrapy_sharedcrawl.scheduler.settings import SchedulerSettings

logger = logging.getLogger(__name__)

STATS = f"{SCHEDULER_STATS}start_urls/"
#: Seconds between two looks at the key once a look found less than a batch (scrapy-redis's pace).
INTERVAL = 1.0
#: While batches come back full, one tick of the heartbeat takes batches up to this many entries, and
#: at most this many batches (at least one): a seed of 100,000 enters the queue at Redis's pace, not a
#: batch a second, in steps short enough that the engine runs between them.
TICK_ENTRIES, TICK_BATCHES = 1000, 10
#: Longest entry read (bytes): a URL or a small JSON object, not a document.
ENTRY_MAX = 8192


#: The Redis type each kind of key must have, and the setting that chooses the kind.
KINDS = {"list": "", "set": "REDIS_START_URLS_AS_SET", "zset": "REDIS_START_URLS_AS_ZSET"}


def start_urls_kind(settings: BaseSettings) -> str:
    """``set``, ``zset`` or ``list``: the Redis type scrapy-redis's ``REDIS_START_URLS_AS_SET`` /
    ``…_AS_ZSET`` say the start URLs key has (checked at start: SettingError for a non-boolean)."""
    if bool_setting(settings, "REDIS_START_URLS_AS_SET", DEFAULTS["REDIS_START_URLS_AS_SET"]):
        return "set"
    if bool_setting(settings, "REDIS_START_URLS_AS_ZSET", DEFAULTS["REDIS_START_URLS_AS_ZSET"]):
        return "zset"
    return "list"


class StartUrls:
    """The start-URLs key of one spider (see the module docstring)."""

    def __init__(
        self,
        server: redis.Redis,
        spider: Spider,
        stats: StatsCollector,
        key: str,
        kind: str,
        batch: int,
        encoding: str = "utf-8",
        claim_seconds: float = DEFAULTS["SCHEDULER_LEASE_SECONDS"],
    ) -> None:
        if kind not in KINDS:
            raise ValueError(f"start-URLs key kind {kind!r} is not one of {', '.join(KINDS)}")
        self.server = server
        self.spider = spider
        self.stats = stats
        self.key = key
        self.kind = kind
        self.batch = max(1, batch)
        self.encoding = encoding
        self.claim_seconds = claim_seconds
        #: One worker at a time takes the key's entries; the claim of a dead worker expires on its own.
        self.claim = Lock(server, claim_key(key), timeout=claim_seconds, thread_local=False)
        #: Entries taken whose requests are not yet known stored: they leave the key once they are.
        self.held: list[bytes] = []
        self._invalid = OncePerReason(stats, f"{STATS}invalid/", logger)
        self._wrong_type_logged = False

    @classmethod
    def from_settings(cls, server: redis.Redis, spider: Spider, settings: BaseSettings) -> StartUrls:
        """The key as scrapy-redis's spiders name it: the spider's ``redis_key`` (``%(name)s`` filled in)
        or ``REDIS_START_URLS_KEY``; its batch size and encoding likewise from the spider first."""
        assert spider.crawler.stats is not None
        key = getattr(spider, "redis_key", None) or setting(settings, "REDIS_START_URLS_KEY", DEFAULTS)
        key = str(key) % {"name": spider.name}
        kind = start_urls_kind(settings)
        batch = getattr(spider, "redis_batch_size", None) or setting(
            settings, "REDIS_START_URLS_BATCH_SIZE", DEFAULTS
        )
        encoding = getattr(spider, "redis_encoding", None) or setting(settings, "REDIS_ENCODING", DEFAULTS)
        claim_seconds = SchedulerSettings.from_settings(settings).lease_seconds
        return cls(server, spider, spider.crawler.stats, key, kind, int(batch), str(encoding), claim_seconds)

    @property
    def batches_per_tick(self) -> int:
        """Batches one tick takes at most while they come back full (see :data:`TICK_ENTRIES`)."""
        return max(1, min(TICK_BATCHES, TICK_ENTRIES // self.batch))

    def take(self) -> list[bytes]:
        """Up to a batch of entries, taken under this worker's claim on the key (kept until
        :meth:`stored`); none if the key is empty, another worker holds the claim (counted), or
        entries taken before are still held. Raises redis errors."""
        if self.held or not self.read():  # a look first: an empty key costs one round trip, no claim
            return []
        if not self._claim():
            self.stats.inc_value(f"{STATS}claimed_elsewhere")
            return []
        entries = self.read()  # again, under the claim: the entries seen may have just been taken
        if not entries:
            self._release()
        self.held = entries
        return entries

    def stored(self) -> int:
        """The held entries' requests are stored: the entries leave the key and the claim is given
        up; how many entries (raises redis errors, the entries still held)."""
        entries = self.held
        if not entries:
            return 0
        self.remove(entries)
        self.held = []
        self._release()
        return len(entries)

    def _claim(self) -> bool:
        """Take the claim on the key, or keep this worker's own (a take that Redis failed midway)."""
        if self.claim.acquire(blocking=False):
            return True
        try:
            return self.claim.owned() and self.claim.reacquire()
        except LockNotOwnedError:  # it expired just now: another worker may take it first, next time
            return False

    def _release(self) -> None:
        try:
            self.claim.release()
        except LockNotOwnedError:
            self.stats.inc_value(f"{STATS}claim_expired")
            logger.warning(
                "The claim on start-URLs key %s expired before its entries' requests were stored "
                "(Redis away, or this worker stalled, longer than SCHEDULER_LEASE_SECONDS, %.0f s): "
                "another worker may have queued them too",
                self.key,
                self.claim_seconds,
            )

    def read(self) -> list[bytes]:
        """Up to a batch of entries, left in the key; none if the key has the wrong type (logged once).
        Raises redis errors for anything else."""
        entries: Any
        try:
            if self.kind == "set":
                entries = self.server.srandmember(self.key, self.batch)
            elif self.kind == "zset":
                entries = self.server.zrevrange(self.key, 0, self.batch - 1)
            else:
                entries = self.server.lrange(self.key, 0, self.batch - 1)
        except redis.ResponseError as error:
            if not str(error).startswith("WRONGTYPE"):
                raise
            self._wrong_type()
            return []
        self._wrong_type_logged = False
        return list(entries or [])

    def _wrong_type(self) -> None:
        self.stats.inc_value(f"{STATS}wrong_type")
        if self._wrong_type_logged:
            return
        self._wrong_type_logged = True
        held = self.server.type(self.key)
        held = held.decode() if isinstance(held, bytes) else str(held)
        logger.error(
            "Start-URLs key %s holds a %s, not the %s this crawl reads (%s): its entries are not read "
            "until the key or the setting is mended; the crawl goes on",
            self.key,
            held,
            self.kind,
            _settings_for(held),
        )

    def remove(self, entries: list[bytes]) -> None:
        """Take ``entries`` out of the key: their requests are stored (raises redis errors)."""
        if not entries:
            return
        if self.kind == "set":
            self.server.srem(self.key, *entries)
            return
        if self.kind == "zset":
            self.server.zrem(self.key, *entries)
            return
        pipe = self.server.pipeline(transaction=True)
        for entry in entries:
            pipe.lrem(self.key, 1, entry)  # type: ignore[arg-type]  # redis-py takes bytes values too
        pipe.execute()

    def requests(
        self, entries: list[bytes], check: Callable[[Request], object] | None = None
    ) -> list[Request]:
        """The requests of ``entries`` that ``check`` (the shared queue's encoding) accepts; an entry that
        makes none, or one ``check`` refuses, is counted and logged once per reason."""
        made = []
        for entry in entries:
            try:
                requests = self._requests(entry)
                for request in requests:
                    request.meta.setdefault("is_start_request", True)
                    if check is not None:
                        check(request)
            except RecursionError:
                self._drop(entry, "RecursionError", "nested too deeply to be a request")
                continue
            except Exception as error:  # the spider's own make_request_from_data may raise anything
                self._drop(entry, getattr(error, "reason", None) or type(error).__name__, error)
                continue
            made.extend(requests)
        self.stats.inc_value(f"{STATS}read", len(entries))
        return made

    def _drop(self, entry: bytes, reason: str, error: object) -> None:
        self._invalid(reason, "Start URL entry %r in %s dropped: %s", entry[:200], self.key, error)

    def _requests(self, entry: bytes) -> list[Request]:
        if len(entry) > ENTRY_MAX:
            raise ValueError(f"entry of {len(entry):,} bytes (at most {ENTRY_MAX:,})")
        make = getattr(self.spider, "make_request_from_data", None)
        made: Any = make(entry) if callable(make) else request_from_data(entry, self.encoding)
        if isinstance(made, Request):
            return [made]
        if made is None:
            raise ValueError("no request made from it")
        if not isinstance(made, Iterable) or isinstance(made, str | bytes):
            raise TypeError(f"make_request_from_data returned {type(made).__name__}, not a Request")
        requests = list(made)
        wrong = [type(request).__name__ for request in requests if not isinstance(request, Request)]
        if wrong:
            raise TypeError(f"make_request_from_data returned a {wrong[0]}, not a Request")
        if not requests:
            raise ValueError("no request made from it")
        return requests


def claim_key(key: str) -> str:
    """The name of the claim on start-URLs key ``key`` (see the module docstring)."""
    return f"{key}:claim"


def _settings_for(kind: str) -> str:
    """The settings that make the intake read a key of Redis type ``kind``."""
    if KINDS.get(kind):
        return f"for a {kind}: {KINDS[kind]}=True"
    if kind == "list":
        return "for a list: " + " and ".join(f"{name}=False" for name in KINDS.values() if name)
    return f"no setting reads a {kind}"


def request_from_data(entry: bytes, encoding: str = "utf-8") -> Request:
    """A request from a start-URLs entry: a URL, or a JSON object with ``url`` (and ``meta``,
    ``priority``, ``method``), as scrapy-redis reads them. Raises ValueError for anything else."""
    text = entry.decode(encoding).strip()
    if not text.startswith("{"):
        return Request(text)
    data: Any = json.loads(text)
    if not isinstance(data, dict) or not isinstance(data.get("url"), str):
        raise ValueError("a JSON entry needs a string 'url'")
    meta = data.get("meta", {})
    priority = data.get("priority", 0)
    method = data.get("method", "GET")
    if not isinstance(meta, dict) or not isinstance(priority, int) or not isinstance(method, str):
        raise ValueError("'meta' must be an object, 'priority' an integer and 'method' a string")
    return Request(data["url"], meta=meta, priority=priority, method=method)
