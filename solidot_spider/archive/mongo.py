"""MongoDB for the whole project: the store's settings (:class:`StoreConfig`), the one client factory
(:func:`mongo_client`), and :class:`MongoStore`, which upserts batches of stories.

Blocking (pymongo): the item pipeline calls it from one worker thread, never from the reactor.
Connection trouble surfaces as :data:`StoreError` for the caller to retry; a document MongoDB
refuses comes back in :attr:`BatchResult.rejected` instead, since retrying it cannot help.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import bson
from bson.errors import InvalidDocument
from pymongo import ASCENDING, DESCENDING, MongoClient, UpdateOne
from pymongo.collection import Collection
from pymongo.errors import BulkWriteError, ConfigurationError, InvalidName, PyMongoError
from scrapy.settings import BaseSettings

from scrapy_sharedcrawl.config import float_setting, int_setting, setting
from scrapy_sharedcrawl.redact import redact_uri
from solidot_spider.archive.documents import StoryWrite, Touch
from solidot_spider.archive.policy import Clock, RefreshPolicy, system_clock
from solidot_spider.archive.schedule import Miss, Schedules
from solidot_spider.defaults import SETTINGS

Document = dict[str, Any]

#: What an unreachable, stalled or refusing MongoDB raises: callers outside the archive catch this
#: name and never import pymongo.
StoreError = PyMongoError
#: What ``solidot-crawl export`` and the status views wait for a server (ms): one answer, no crawl
#: waiting on it, so longer than the store's ``MONGO_SERVER_SELECTION_TIMEOUT``.
READ_TIMEOUT_MS = 10_000


class StoreSettingsError(ValueError):
    """``MONGO_URI``, ``MONGO_DATABASE`` or ``MONGO_COLLECTION`` pymongo refuses; the message names
    them with the URI redacted (pymongo's own may quote it)."""


@dataclass(frozen=True, slots=True)
class StoreConfig:
    """The store's settings (``MONGO_*``), read once: every MongoDB client of the project starts here."""

    uri: str
    database: str
    collection: str
    batch_size: int
    flush_interval: float
    max_buffer: int
    retry_base: float
    retry_max: float
    server_selection_timeout_ms: int

    @classmethod
    def from_settings(cls, settings: BaseSettings) -> StoreConfig:
        def get(name: str) -> Any:
            return setting(settings, name, SETTINGS)

        return cls(
            uri=str(get("MONGO_URI")).strip(),
            database=str(get("MONGO_DATABASE")),
            collection=str(get("MONGO_COLLECTION")),
            # numbers checked at start-up: a crawl must not start with a store that can never write
            batch_size=int_setting(
                settings, "MONGO_BATCH_SIZE", SETTINGS["MONGO_BATCH_SIZE"], at_least=1, at_most=100_000
            ),
            flush_interval=float_setting(
                settings, "MONGO_FLUSH_INTERVAL", SETTINGS["MONGO_FLUSH_INTERVAL"], above=0, at_most=3600
            ),
            max_buffer=int_setting(
                settings, "MONGO_MAX_BUFFER", SETTINGS["MONGO_MAX_BUFFER"], at_least=1, at_most=10_000_000
            ),
            retry_base=float_setting(
                settings, "MONGO_RETRY_BASE", SETTINGS["MONGO_RETRY_BASE"], above=0, at_most=3600
            ),
            retry_max=float_setting(
                settings, "MONGO_RETRY_MAX", SETTINGS["MONGO_RETRY_MAX"], above=0, at_most=86_400
            ),
            server_selection_timeout_ms=int_setting(
                settings,
                "MONGO_SERVER_SELECTION_TIMEOUT",
                SETTINGS["MONGO_SERVER_SELECTION_TIMEOUT"],
                at_least=1,
                at_most=600_000,
                meaning="milliseconds",
            ),
        )

    def backoff(self, attempt: int) -> float:
        """Seconds to wait before try ``attempt + 1``: doubling from ``retry_base``, capped."""
        return min(self.retry_max, self.retry_base * 2 ** (attempt - 1))

    def collection_of(self, client: MongoClient[Document]) -> Collection[Document]:
        """The stories collection these settings name, on ``client``."""
        return client[self.database][self.collection]


def mongo_client(
    uri: str, timeout_ms: int = SETTINGS["MONGO_SERVER_SELECTION_TIMEOUT"]
) -> MongoClient[Document]:
    """A client of the MongoDB at ``uri``, as every part of the project opens one: aware datetimes (UTC),
    the application name servers log, and a bounded wait for a server (``timeout_ms``)."""
    return MongoClient(uri, tz_aware=True, serverSelectionTimeoutMS=timeout_ms, appname="solidot-crawler")


#: What encoding one document into BSON can raise: a document BSON can't hold (over 16 MB, a key it
#: refuses), an integer beyond 64 bits, a string that isn't valid Unicode. One such story must never
#: cost the others of its batch: they are written one by one to find it.
ENCODING_ERRORS: tuple[type[Exception], ...] = (InvalidDocument, OverflowError, ValueError)
#: MongoDB's largest document (16 MiB), less room for the update's operators around the story.
MAX_DOCUMENT_BYTES = 16 * 1024 * 1024 - 64 * 1024

#: Write-error codes that may pass (a failover, a shutdown, a conflict): the write is tried again.
TRANSIENT_WRITE_CODES = frozenset({6, 7, 50, 89, 91, 112, 189, 262, 9001, 10107, 11600, 11602, 13435, 13436})


@dataclass(frozen=True, slots=True)
class Rejected:
    """A story MongoDB refused for good, with why."""

    sid: int
    error: str
    code: int | None
    message: str


@dataclass(slots=True)
class BatchResult:
    """What a batch did: stories inserted, changed, unchanged; touches applied; writes refused;
    ``refresh``: what it did to the schedules and gaps (:class:`~.schedule.Plan` counts).

    ``retry`` holds the writes that failed for a reason that may pass (write
    errors with a code in :data:`TRANSIENT_WRITE_CODES`); the rest of the batch
    is done.
    """

    upserted: int = 0
    modified: int = 0
    unchanged: int = 0
    touched: int = 0
    rejected: list[Rejected] = field(default_factory=list)
    retry: list[StoryWrite | Touch | Miss] = field(default_factory=list)
    refresh: dict[str, int] = field(default_factory=dict)

    def add(self, other: BatchResult) -> None:
        self.upserted += other.upserted
        self.modified += other.modified
        self.unchanged += other.unchanged
        self.touched += other.touched
        self.rejected += other.rejected
        self.retry += other.retry
        for name, count in other.refresh.items():
            self.refresh[name] = self.refresh.get(name, 0) + count


class MongoStore:
    """One collection of stories, each document upserted by its unique ``sid``; with a ``policy``,
    every write also moves the story's re-fetch schedule (:mod:`.schedule`)."""

    def __init__(
        self,
        uri: str,
        database: str,
        collection: str,
        server_selection_timeout_ms: int = SETTINGS["MONGO_SERVER_SELECTION_TIMEOUT"],
        policy: RefreshPolicy | None = None,
        clock: Clock = system_clock,
    ) -> None:
        self.client = mongo_client(uri, server_selection_timeout_ms)
        self.collection: Collection[dict[str, Any]] = self.client[database][collection]
        self.schedules = None if policy is None else Schedules(self.collection, policy, clock)

    @classmethod
    def open(
        cls, config: StoreConfig, policy: RefreshPolicy | None = None, clock: Clock = system_clock
    ) -> MongoStore:
        """The store these settings name; :class:`StoreSettingsError` when pymongo refuses them (a
        ``mongodb+srv://`` URI is resolved here: call it off the reactor)."""
        try:
            return cls(
                config.uri,
                config.database,
                config.collection,
                config.server_selection_timeout_ms,
                policy,
                clock,
            )
        except (ConfigurationError, InvalidName) as error:  # InvalidURI included
            raise StoreSettingsError(
                f"MongoDB settings are not usable (MONGO_URI {redact_uri(config.uri)}, MONGO_DATABASE "
                f"{config.database!r}, MONGO_COLLECTION {config.collection!r}): {redact_uri(str(error))}"
            ) from None

    def ensure_indexes(self) -> None:
        """The unique index on ``sid`` (what makes an upsert an upsert), one on ``published``, and
        the schedules' (``next_due``, the gaps')."""
        self.collection.create_index([("sid", ASCENDING)], unique=True)
        self.collection.create_index([("published", DESCENDING)])
        if self.schedules is not None:
            self.schedules.ensure_indexes()

    def write_batch(self, writes: Sequence[StoryWrite | Touch | Miss]) -> BatchResult:
        """Apply ``writes`` in unordered bulk writes (stories, then touches, then gaps), each story's
        schedule moved with it (one read of the batch's stored schedules first).

        Raises ``PyMongoError`` when MongoDB cannot be reached: nothing is known
        to be written then, and writing the whole batch again is safe (at worst
        ``fetch_count`` counts a fetch twice, or an interval moves twice).
        """
        plan = self.schedules.plan(writes) if self.schedules is not None else None
        sets = plan.sets if plan is not None else {}
        stories = [write for write in writes if isinstance(write, StoryWrite)]
        # a 404 of a stored story moves its schedule like an unchanged fetch (the archive keeps it)
        touches = [
            write
            for write in writes
            if isinstance(write, Touch) or (isinstance(write, Miss) and write.sid in sets)
        ]
        result = BatchResult()
        if stories:
            result.add(self._write_stories(stories, sets))
        if touches:
            result.add(self._write_touches(touches, sets))
        if plan is not None and self.schedules is not None:
            self.schedules.apply_gaps(plan)
            result.refresh = plan.counts
        return result

    def close(self) -> None:
        self.client.close()

    def _write_stories(
        self, stories: Sequence[StoryWrite], sets: Mapping[int, Document], isolate_invalid: bool = True
    ) -> BatchResult:
        too_large = []
        if isolate_invalid:  # (not again for the stories written one by one)
            fitting = []
            for story in stories:
                try:
                    check_document_size(story)
                    fitting.append(story)
                except ENCODING_ERRORS as error:
                    too_large.append(Rejected(story.sid, type(error).__name__, None, str(error)[:200]))
            stories = fitting
        result = self._write_fitting(stories, sets, isolate_invalid)
        result.rejected[:0] = too_large
        return result

    def _write_fitting(
        self, stories: Sequence[StoryWrite], sets: Mapping[int, Document], isolate_invalid: bool
    ) -> BatchResult:
        if not stories:
            return BatchResult()
        operations = []
        for story in stories:
            operations.append(UpdateOne(story.changed_filter, story.changed_update))
            operations.append(
                UpdateOne(
                    {"sid": story.sid}, _with_set(story.upsert_update, sets.get(story.sid)), upsert=True
                )
            )
        try:
            details = _bulk_write(self.collection, operations)
        except ENCODING_ERRORS:
            if not isolate_invalid:
                raise
            return self._one_by_one(stories, sets)
        result = BatchResult()
        failed = _sort_write_errors(details, stories, result, operations_per_write=2)
        result.upserted = details.get("nUpserted", 0)
        # Every upsert that matched a stored story modified it (fetch_count moves),
        # so what the server modified beyond those is the stories whose content changed.
        upserts_done = len(stories) - sum(1 for error in details.get("writeErrors", []) if error["index"] % 2)
        result.modified = max(0, details.get("nModified", 0) - (upserts_done - result.upserted))
        result.unchanged = max(0, len(stories) - len(failed) - result.upserted - result.modified)
        return result

    def _write_touches(self, touches: Sequence[Touch | Miss], sets: Mapping[int, Document]) -> BatchResult:
        operations = [
            UpdateOne(
                {"sid": touch.sid},
                _with_set(touch.update if isinstance(touch, Touch) else {}, sets.get(touch.sid)),
            )
            for touch in touches
        ]
        details = _bulk_write(self.collection, operations)
        result = BatchResult(touched=details.get("nModified", 0))
        _sort_write_errors(details, touches, result, operations_per_write=1)
        return result

    def _one_by_one(self, stories: Sequence[StoryWrite], sets: Mapping[int, Document]) -> BatchResult:
        """Write each story alone, to find the one(s) BSON cannot hold (see :data:`ENCODING_ERRORS`)."""
        result = BatchResult()
        for story in stories:
            try:  # (sizes were checked by _write_stories before the batch)
                result.add(self._write_stories([story], sets, isolate_invalid=False))
            except ENCODING_ERRORS as error:
                result.rejected.append(Rejected(story.sid, type(error).__name__, None, str(error)[:200]))
        return result


def check_document_size(story: StoryWrite) -> None:
    """Raise :class:`bson.errors.InvalidDocument` for a story MongoDB could not store (over 16 MB),
    before it is sent: pymongo doesn't check a single update's size, a server may refuse it only
    after a long transfer, and a wire-protocol server not at all. (≈ 10 µs for a 2 kB story.)"""
    size = len(bson.encode(story.upsert_update["$setOnInsert"]))
    if size > MAX_DOCUMENT_BYTES:
        raise InvalidDocument(f"story document of {size:,} bytes is over MongoDB's 16 MB limit")


def _with_set(update: Document, fields: Document | None) -> Document:
    """``update`` with ``fields`` added to its ``$set`` (a story's schedule)."""
    if not fields:
        return update
    return {**update, "$set": {**update.get("$set", {}), **fields}}


def _bulk_write(collection: Collection[dict[str, Any]], operations: list[UpdateOne]) -> dict[str, Any]:
    """The server's counts of an unordered bulk write, write errors included rather than raised."""
    try:
        return dict(collection.bulk_write(operations, ordered=False).bulk_api_result)
    except BulkWriteError as error:
        return dict(error.details)


def _sort_write_errors(
    details: dict[str, Any],
    writes: Sequence[StoryWrite] | Sequence[Touch | Miss],
    result: BatchResult,
    operations_per_write: int,
) -> set[int]:
    """Put the writes with a write error in ``result.retry`` or ``result.rejected``; their indexes."""
    failed: dict[int, dict[str, Any]] = {}
    for error in details.get("writeErrors", []):
        position = error["index"] // operations_per_write
        # a transient error wins: the write is tried again as a whole
        if position not in failed or error.get("code") in TRANSIENT_WRITE_CODES:
            failed[position] = error
    for position, error in sorted(failed.items()):
        write = writes[position]
        if error.get("code") in TRANSIENT_WRITE_CODES:
            result.retry.append(write)
        else:
            message = str(error.get("errmsg", ""))[:200]
            result.rejected.append(Rejected(write.sid, "WriteError", error.get("code"), message))
    return set(failed)
