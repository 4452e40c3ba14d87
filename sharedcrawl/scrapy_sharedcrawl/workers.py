"""Which workers are crawling right now: a registry in Redis with a heartbeat, for status tools.

:class:`WorkerRegistry` (an extension, on when a Redis is configured) enters this worker at spider
open and beats every ``WORKER_HEARTBEAT`` seconds; :func:`live_workers` lists those whose last beat
is recent. A slow or vanished Redis never stalls the crawl.

Design notes: docs/framework-design.md#workers.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import redis
from scrapy import signals
from scrapy.crawler import Crawler
from scrapy.exceptions import NotConfigured
from scrapy.utils.asyncio import create_looping_call, run_in_thread
from scrapy.utils.defer import deferred_from_coro

from scrapy_sharedcrawl.config import redis_configured, setting
from scrapy_sharedcrawl.connection import describe, redis_from_settings
from scrapy_sharedcrawl.defaults import SETTINGS as DEFAULTS
from scrapy_sharedcrawl.keys import CrawlKeys, this_worker
from scrapy_sharedcrawl.outage import Outage
from scrapy_sharedcrawl.reading import Unreadable, counter, moment, text, whole

logger = logging.getLogger(__name__)
_T = TypeVar("_T")

#: A worker is live while its last beat is younger than this many beats.
LIVE_BEATS = 3
#: Entries of workers silent this long (s) are deleted.
FORGET_AFTER = 24 * 3600
#: Longest heartbeat interval (s) an entry is read with: a day (a longer one is no heartbeat).
MAX_HEARTBEAT = 24 * 3600.0
#: The worker's own stats its entry carries besides pages and items: errors (failed attempts and
#: error log lines) and the items its store holds, not yet written (a gauge the store sets).
ERROR_STATS = ("retry/count", "log_count/ERROR")

#: KEYS: 1 workers ZSET, 2 info HASH. ARGV: 1 id, 2 JSON, 3 forget after (ms), 4 key TTL (ms).
#: Beat, and forget workers silent too long. → Redis time (ms).
_LUA_BEAT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
local gone = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[3]))
for _, id in ipairs(gone) do
  redis.call('ZREM', KEYS[1], id)
  redis.call('HDEL', KEYS[2], id)
end
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
return now
"""


@dataclass(frozen=True)
class Worker:
    """One worker as the registry knows it."""

    id: str
    host: str
    pid: int
    started_at: float  # Unix s
    pages: int
    items: int
    heartbeat_age: float  # s since its last beat
    heartbeat_interval: float
    node: str = ""  # the fleet's name of its machine (WORKER_NODE_NAME, else its host name)
    job: str | None = None  # scrapyd's job id
    version: str | None = None  # the scrapyd egg version it runs
    errors: int = 0  # retried failures and error log lines (ERROR_STATS)
    buffered: int = 0  # items its store holds, not yet written (the WORKER_BUFFER_STAT gauge)

    @property
    def live(self) -> bool:
        return self.heartbeat_age <= LIVE_BEATS * self.heartbeat_interval


class WorkerRegistry:
    """Extension: this worker in the crawl's registry while it runs (see the module docstring)."""

    def __init__(self, crawler: Crawler, server: redis.Redis, interval: float) -> None:
        if interval <= 0:
            raise ValueError("WORKER_HEARTBEAT must be positive")
        self.crawler = crawler
        self.server = server
        self.interval = interval
        self.keys = CrawlKeys.from_crawler(crawler)
        self.where = describe(crawler.settings)
        self.worker_id = this_worker()
        self.started_at = time.time()
        self.node = str(setting(crawler.settings, "WORKER_NODE_NAME", DEFAULTS)) or socket.gethostname()
        #: The stat of the items this worker's store holds unwritten (shown per worker; empty: none).
        self.buffer_stat = str(setting(crawler.settings, "WORKER_BUFFER_STAT", DEFAULTS))
        self._beat_script = server.register_script(_LUA_BEAT)
        self._loop: Any = None
        self._beating = False
        self.outage = Outage(
            self.where,
            gone="Worker heartbeat: Redis at {where} is unreachable ({error}) — status may show this worker "
            "as gone",
            back="Worker heartbeat: Redis at {where} is back",
            logger=logger,
            retry_base=0.0,
        )

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> WorkerRegistry:
        settings = crawler.settings
        if not redis_configured(settings):
            raise NotConfigured  # no message: not a shared crawl, nothing to say
        interval = settings.getfloat("WORKER_HEARTBEAT", DEFAULTS["WORKER_HEARTBEAT"])
        registry = cls(crawler, redis_from_settings(settings), interval)
        crawler.signals.connect(registry.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(registry.spider_closed, signal=signals.spider_closed)
        crawler.signals.connect(registry.engine_stopped, signal=signals.engine_stopped)
        return registry

    def describe(self) -> dict[str, Any]:
        """This worker's entry: who it is and what it has done so far."""
        stats = self.crawler.stats
        assert stats is not None
        return {
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "started_at": self.started_at,
            "pages": int(stats.get_value("response_received_count", 0)),
            "items": int(stats.get_value("item_scraped_count", 0)),
            "errors": sum(int(stats.get_value(name, 0)) for name in ERROR_STATS),
            "buffered": int(stats.get_value(self.buffer_stat, 0)) if self.buffer_stat else 0,
            "heartbeat": self.interval,
            "node": self.node,
            **scrapyd_job(self.crawler.spider),
        }

    async def spider_opened(self) -> None:
        spider = self.crawler.spider
        log_code_origin(self.worker_id, self.node, scrapyd_job(spider), type(spider).__module__)
        await self._beat()
        self._loop = create_looping_call(self._beat_soon)
        self._loop.start(self.interval, now=False)

    def spider_closed(self) -> None:
        if self._loop is not None and self._loop.running:
            self._loop.stop()

    async def engine_stopped(self) -> None:
        """Leave the registry: the stats collector has pushed this worker's last counts by now."""
        if self._loop is None:
            return  # never opened a spider, never entered
        try:
            await run_in_thread(self._leave)
        except redis.RedisError as error:
            logger.warning(
                "Could not leave the worker registry at %s (%s): the entry ages out in %.0f s",
                self.where,
                type(error).__name__,
                LIVE_BEATS * self.interval,
            )

    def _beat_soon(self) -> None:
        if self._beating:
            return
        deferred_from_coro(self._beat()).addErrback(
            lambda failure: logger.error("Worker heartbeat failed: %s", failure.getErrorMessage())
        )

    async def _beat(self) -> None:
        """One heartbeat, sent from a thread (the entry is built here, on the reactor thread)."""
        self._beating = True
        entry = json.dumps(self.describe())
        args: list[str | int] = [self.worker_id, entry, FORGET_AFTER * 1000, FORGET_AFTER * 1000]
        try:
            await run_in_thread(self._beat_script, keys=[self.keys.workers, self.keys.worker_info], args=args)
        except redis.RedisError as error:
            self.outage.failed(error)
        else:
            self.outage.recovered()
        finally:
            self._beating = False

    def _leave(self) -> None:
        pipe = self.server.pipeline(transaction=True)
        pipe.zrem(self.keys.workers, self.worker_id)
        pipe.hdel(self.keys.worker_info, self.worker_id)
        pipe.execute()


def scrapyd_job(spider: Any) -> dict[str, str | None]:
    """The scrapyd job running this process, if any: scrapyd passes its id as the spider argument
    ``_job`` and names the egg version it chose in ``SCRAPYD_EGG_VERSION`` (when it was asked for one)."""
    job = getattr(spider, "_job", None)
    return {
        "job": job if isinstance(job, str) and job else None,
        "version": os.environ.get("SCRAPYD_EGG_VERSION") or None,
    }


def log_code_origin(worker_id: str, node: str, job: dict[str, str | None], spider_module: str) -> None:
    """Say which code this worker runs; warn when a scrapyd job runs an installed copy, not its egg.

    scrapyd's runner *appends* the egg to ``sys.path``: a copy of the project installed
    in the node's environment the ordinary way (not editable) comes first, and every
    deploy is then silently ignored.
    """
    project = spider_module.partition(".")[0]
    module = sys.modules.get(project)
    where = getattr(module, "__file__", None)
    if not where:
        return
    origin = str(Path(where).parent.parent)
    if job["job"] is None:
        logger.info("Worker %s on %s runs %s from %s", worker_id, node, project, origin)
    elif ".egg" in Path(origin).name:
        logger.info(
            "Worker %s on %s: scrapyd job %s, egg version %s (%s)",
            worker_id, node, job["job"], job["version"] or "newest", origin,
        )  # fmt: skip
    else:
        logger.warning(
            "Worker %s on %s: scrapyd job %s runs %s installed at %s, not the deployed egg: "
            "install the project on scrapyd nodes with `pip install -e` (or not at all) so deploys count",
            worker_id, node, job["job"], project, origin,
        )  # fmt: skip


def live_workers(
    server: redis.Redis, keys: CrawlKeys, include_gone: bool = False, unreadable: Unreadable | None = None
) -> list[Worker]:
    """The registry's workers (live ones only unless ``include_gone``), oldest first, in one round trip."""
    pipe = server.pipeline(transaction=True)
    pipe.time()
    pipe.zrange(keys.workers, 0, -1, withscores=True)
    pipe.hgetall(keys.worker_info)
    (seconds, micros), beats, info = pipe.execute()
    return parse_workers(seconds * 1000 + micros // 1000, beats, info, include_gone, unreadable)


def parse_workers(
    now_ms: float,
    beats: list[tuple[bytes, float]],
    info: dict[bytes, bytes],
    include_gone: bool = False,
    unreadable: Unreadable | None = None,
) -> list[Worker]:
    """Workers from a read of the registry: ``ZRANGE … WITHSCORES``, ``HGETALL`` and Redis time (ms).

    An entry no worker could have written (not JSON, a count that is not one, a time no date can
    show) is skipped and counted in ``unreadable`` (:mod:`.reading`): the others are read all the same.
    """
    unreadable = unreadable if unreadable is not None else Unreadable()
    workers = []
    for raw_id, beat_ms in beats:
        raw = info.get(raw_id)
        if raw is None:
            continue
        try:
            worker = _worker(raw_id, raw, now_ms, beat_ms)
        except (ValueError, TypeError, AttributeError, RecursionError) as error:  # not a worker's entry
            unreadable.skip("workers", raw_id, str(error)[:200])
            continue
        if include_gone or worker.live:
            workers.append(worker)
    return sorted(workers, key=lambda worker: worker.started_at)


def _worker(raw_id: bytes, raw: bytes, now_ms: float, beat_ms: float) -> Worker:
    """One registry entry, read as untrusted JSON (ValueError: not an entry a worker writes)."""
    entry = json.loads(raw)
    if not isinstance(entry, dict):
        raise ValueError("not a JSON object")
    beat = moment(beat_ms / 1000)
    if beat is None:
        raise ValueError(f"heartbeat time {beat_ms!r} is no moment")
    heartbeat = counter(entry.get("heartbeat", DEFAULTS["WORKER_HEARTBEAT"]))
    if heartbeat is None or not 0 < heartbeat <= MAX_HEARTBEAT:
        raise ValueError(f"heartbeat interval {entry.get('heartbeat')!r} out of range")
    return Worker(
        id=text(raw_id),
        host=str(entry.get("host", "?")),
        pid=_field(entry, "pid", whole),
        started_at=_field(entry, "started_at", moment),
        pages=_field(entry, "pages", whole),
        items=_field(entry, "items", whole),
        heartbeat_age=max(0.0, (now_ms - beat_ms) / 1000),
        heartbeat_interval=float(heartbeat),
        node=str(entry.get("node") or entry.get("host", "?")),
        job=_optional_text(entry.get("job")),
        version=_optional_text(entry.get("version")),
        errors=_field(entry, "errors", whole),
        buffered=_field(entry, "buffered", whole),
    )


def _field(entry: dict[str, Any], name: str, read: Callable[[Any], _T | None]) -> _T:
    """``entry[name]`` (0 when absent) through ``read``; ValueError when it is no such value."""
    value = read(entry.get(name, 0))
    if value is None:
        raise ValueError(f"{name} {str(entry.get(name))[:40]!r} out of range")
    return value


def _optional_text(value: Any) -> str | None:
    return None if value is None else str(value)
