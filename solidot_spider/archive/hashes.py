"""The content-hash indexes: the last content hash recorded per sid, which tells the dedupe stage a
new or changed story from an unchanged one.

:class:`MemoryContentHashIndex` (one process), :class:`StoredContentHashIndex` (the same, seeded from
the hashes MongoDB stores), :class:`RedisContentHashIndex` (a Redis hash shared by every worker and
run). Calls that block run in a thread. Design notes: docs/project-design.md#crawl-pipelines-dedupe.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

import redis
from scrapy.utils.asyncio import CallLaterResult, call_later, run_in_thread
from scrapy.utils.defer import deferred_from_coro, maybe_deferred_to_future
from twisted.internet.defer import Deferred

from scrapy_sharedcrawl.redact import redact_uri
from solidot_spider.archive.mongo import StoreError, mongo_client
from solidot_spider.archive.policy import Outcome
from solidot_spider.defaults import SETTINGS

logger = logging.getLogger(__name__)

_OUTCOMES: tuple[Outcome, ...] = ("new", "changed", "unchanged")
#: The Redis hash's default key (``SOLIDOT_DEDUPE_KEY``).
DEFAULT_KEY: str = SETTINGS["SOLIDOT_DEDUPE_KEY"]


class IndexUnavailable(Exception):
    """The index could not answer; ``retriable`` is False when asking again can't help."""

    def __init__(self, message: str, retriable: bool = True) -> None:
        super().__init__(message)
        self.retriable = retriable


class ContentHashIndex(Protocol):
    """The last content hash recorded per sid, shared as widely as the implementation allows."""

    def describe(self) -> str:
        """Where the index lives, for log lines (no secrets)."""
        ...

    async def compare_and_set(self, sid: int, digest: str) -> Outcome:
        """Record ``digest`` for ``sid`` and say how it compares with the previous one, atomically."""
        ...

    async def forget(self, sid: int, digest: str) -> None:
        """Remove ``sid``'s record if it still is ``digest`` (its write failed downstream)."""
        ...

    async def close(self) -> None: ...


@runtime_checkable
class AcknowledgedContentHashIndex(ContentHashIndex, Protocol):
    """An index that compares without recording, and records later: for a shared crawl, where a
    hash may be recorded only once its request is acknowledged (see the module docstring)."""

    async def compare(self, sid: int, digest: str) -> Outcome:
        """How ``digest`` compares with the hash recorded for ``sid``; records nothing."""
        ...

    async def record(self, hashes: Mapping[int, str]) -> None:
        """Record these hashes (sid → digest) in one call."""
        ...


def outcome_of(previous: str | bytes | None, digest: str | bytes) -> Outcome:
    """How a story whose content hashes to ``digest`` compares with the ``previous`` hash recorded."""
    if previous is None:
        return "new"
    return "unchanged" if previous == digest else "changed"


class MemoryContentHashIndex:
    """The index of one process: what this run has seen."""

    def __init__(self) -> None:
        self._hashes: dict[int, str] = {}

    def describe(self) -> str:
        return "memory (this process only)"

    async def compare_and_set(self, sid: int, digest: str) -> Outcome:
        previous = self._hashes.get(sid)
        self._hashes[sid] = digest
        return outcome_of(previous, digest)

    async def forget(self, sid: int, digest: str) -> None:
        if self._hashes.get(sid) == digest:
            del self._hashes[sid]

    async def close(self) -> None:
        return None


#: KEYS[1] = hash key, ARGV = sid, digest → "new" | "changed" | "unchanged". Atomic: two workers
#: fetching the same new story can't both see it as new.
_COMPARE_AND_SET = """
local previous = redis.call('HGET', KEYS[1], ARGV[1])
if previous == ARGV[2] then return 'unchanged' end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
if previous then return 'changed' end
return 'new'
"""
#: KEYS[1] = hash key, ARGV = sid, digest: delete the sid's record only if nobody replaced it since.
_FORGET = """
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
  return redis.call('HDEL', KEYS[1], ARGV[1])
end
return 0
"""


#: A shared crawl's comparisons wait this long (seconds) for others to share one HMGET: one round
#: trip and one thread hand-off a story was most of what Redis cost a worker a page.
COMPARE_WINDOW = 0.02
#: At most this many sids an HMGET (a batch this full is sent at once).
COMPARE_BATCH = 200


#: sid → (digest, waiter) of each comparison waiting for an HMGET.
Waiting = dict[int, list[tuple[str, Deferred[Outcome]]]]


def _fail(batch: Waiting, message: str, retriable: bool) -> None:
    """Every waiter of ``batch`` gets its own :class:`IndexUnavailable`: each caller retries on its own."""
    for waiters in batch.values():
        for _, waiter in waiters:
            waiter.errback(IndexUnavailable(message, retriable))


class RedisContentHashIndex:
    """The index in a Redis hash (sid → hex digest), shared by every worker and run.

    Calls run in a thread so a slow or unreachable server never blocks the
    reactor; the pipeline owns retrying, so redis-py's own retries are off.
    Comparisons made within :data:`COMPARE_WINDOW` of each other share one HMGET.
    """

    def __init__(self, client: redis.Redis, where: str, key: str = DEFAULT_KEY) -> None:
        self.client = client
        self.where = where
        self.key = key
        self._compare_and_set = self.client.register_script(_COMPARE_AND_SET)
        self._forget = self.client.register_script(_FORGET)
        #: sid → (digest, waiter) of the comparisons the next HMGET answers.
        self._waiting: Waiting = {}
        self._timer: CallLaterResult | None = None

    def describe(self) -> str:
        return f"Redis at {self.where}, key {self.key}"

    async def compare_and_set(self, sid: int, digest: str) -> Outcome:
        result = await self._run(self._compare_and_set, keys=[self.key], args=[sid, digest])
        answer = result.decode() if isinstance(result, bytes) else str(result)
        for outcome in _OUTCOMES:
            if answer == outcome:
                return outcome
        raise IndexUnavailable(f"unexpected answer {result!r} from the compare-and-set script", False)

    async def compare(self, sid: int, digest: str) -> Outcome:
        waiter: Deferred[Outcome] = Deferred()
        self._waiting.setdefault(sid, []).append((digest, waiter))
        if len(self._waiting) >= COMPARE_BATCH:
            self._send_waiting()
        elif self._timer is None:
            self._timer = call_later(COMPARE_WINDOW, self._send_waiting)
        return await maybe_deferred_to_future(waiter)

    def _send_waiting(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        batch, self._waiting = self._waiting, {}
        if batch:
            deferred_from_coro(self._answer(batch))

    async def _answer(self, batch: Waiting) -> None:
        """One HMGET for every sid of ``batch``; each waiter gets its outcome, or the error."""
        sids = list(batch)
        try:
            values = await self._run(self.client.hmget, self.key, sids)
        except IndexUnavailable as error:
            _fail(batch, str(error), error.retriable)
            return
        if not isinstance(values, list) or len(values) != len(sids):
            _fail(batch, f"unexpected HMGET answer of {type(values).__name__}", retriable=False)
            return
        for sid, previous in zip(sids, values, strict=True):
            for digest, waiter in batch[sid]:
                waiter.callback(outcome_of(previous, digest.encode()))

    async def record(self, hashes: Mapping[int, str]) -> None:
        if hashes:
            await self._run(self.client.hset, self.key, mapping=dict(hashes))

    async def forget(self, sid: int, digest: str) -> None:
        await self._run(self._forget, keys=[self.key], args=[sid, digest])

    async def close(self) -> None:
        self.client.close()

    async def _run(self, call: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return await run_in_thread(call, *args, **kwargs)
        except (redis.ConnectionError, redis.TimeoutError) as error:
            raise IndexUnavailable(f"{type(error).__name__}: {error}") from error
        except redis.RedisError as error:  # e.g. WRONGTYPE: another program uses the key
            raise IndexUnavailable(f"{type(error).__name__}: {error}", retriable=False) from error


class StoredContentHashIndex(MemoryContentHashIndex):
    """A memory index seeded, on first use, with the hashes stored in MongoDB."""

    def __init__(
        self,
        uri: str,
        database: str,
        collection: str,
        timeout_ms: int = SETTINGS["MONGO_SERVER_SELECTION_TIMEOUT"],
    ) -> None:
        super().__init__()
        self.uri, self.database, self.collection = uri, database, collection
        self.timeout_ms = timeout_ms
        self._loaded = False
        self._lock = asyncio.Lock()

    def describe(self) -> str:
        return f"memory, seeded from {redact_uri(self.uri)} {self.database}.{self.collection}"

    async def compare_and_set(self, sid: int, digest: str) -> Outcome:
        if not self._loaded:
            async with self._lock:
                if not self._loaded:
                    self._hashes.update(await self._stored_hashes())
                    self._loaded = True
        return await super().compare_and_set(sid, digest)

    async def _stored_hashes(self) -> dict[int, str]:
        try:
            return await run_in_thread(self._read)
        except StoreError as error:
            logger.warning(
                "Could not read stored content hashes from %s (%s): every story passes as new, "
                "the store still tells unchanged ones apart",
                redact_uri(self.uri),
                redact_uri(type(error).__name__),
            )
            return {}

    def _read(self) -> dict[int, str]:
        client = mongo_client(self.uri, self.timeout_ms)
        try:
            cursor = client[self.database][self.collection].find(
                {"content_hash": {"$exists": True}}, {"_id": 0, "sid": 1, "content_hash": 1}
            )
            hashes = {int(doc["sid"]): str(doc["content_hash"]) for doc in cursor}
        finally:
            client.close()
        logger.info("Dedupe: %d stored content hashes loaded", len(hashes))
        return hashes
