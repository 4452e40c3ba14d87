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
from solidot_spider.archive.known import SidSet
from solidot_spider.archive.policy import Clock, RefreshPolicy, system_clock
from solidot_spider.archive.schedule import Miss, Plan, Schedules
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
    """What a batch did: stories inserted (``new_sids``), changed, unchanged; touches applied; writes
    refused; ``refresh``: what it did to the schedules and gaps (:class:`~.schedule.Plan` counts).

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
    new_sids: list[int] = field(default_factory=list)

    def add(self, other: BatchResult) -> None:
        self.upserted += other.upserted
        self.new_sids += other.new_sids
        self.modified += other.modified
        self.unchanged += other.unchanged
        self.touched += other.touched
        self.rejected += other.rejected
        self.retry += other.retry
        for name, count in other.refresh.items():
            self.refresh[name] = self.refresh.get(name, 0) + count

    @property
    def failed_sids(self) -> set[int]:
        """The sids of the writes refused, or to be tried again."""
        return {rejected.sid for rejected in self.rejected} | {write.sid for write in self.retry}


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
        #: The sids this worker knows the store holds (stories and gaps): read by :meth:`prepare` or
        #: the first batch, then kept up to date by this store's writes.
        self.known: SidSet | None = None

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

    def prepare(self) -> None:
        """:meth:`ensure_indexes`, and (with a policy, the first time) read every sid the store holds
        (:attr:`known`): what lets a batch of sids new to the store be written without a read first.

        Called again after an outage, it doesn't read them again: a store that lost its data costs a
        read per batch, never a wrong write, and a batch written again after a lost reply must guess
        its own inserts new again, to count them once (see :meth:`write_batch`)."""
        self.ensure_indexes()
        if self.schedules is not None and self.known is None:
            self.known = self.schedules.known_sids()

    def write_batch(self, writes: Sequence[StoryWrite | Touch | Miss]) -> BatchResult:
        """Apply ``writes`` in unordered bulk writes (stories, then touches, then gaps), each story's
        schedule moved with it.

        One round trip for a batch of stories new to the store, one more for its 404s (the gaps):
        the stored schedules are read (one round trip more) only for the sids this worker knows the
        store holds (:attr:`known`). A story whose sid is unknown is guessed new: upserted with its
        first schedule set on insert, without the update that replaces a stored story's content. One
        that was stored after all (by another worker since :attr:`known` was read, or by an attempt
        of this batch whose reply was lost) is read and written in two more round trips, counted as
        ``refresh`` ``guessed_new_was_stored``; a 404 guessed to be a new gap likewise.

        Raises ``PyMongoError`` when MongoDB cannot be reached: nothing is known
        to be written then, and writing the whole batch again is safe (at worst
        ``fetch_count`` counts a fetch twice, or an interval moves twice).
        """
        if self.schedules is None:
            return self._write(writes, {}, {})
        if self.known is None:  # a caller that didn't prepare()
            self.known = self.schedules.known_sids()
        plan = self.schedules.plan(writes, self.known)
        result = self._write(writes, plan.sets, plan.first)
        gaps_inserted = self.schedules.apply_gaps(plan)
        if wrong := self._wrong_guesses(writes, plan, result, gaps_inserted):
            self._recheck(wrong, plan, result)
        failed = result.failed_sids
        self.known.update(write.sid for write in writes if write.sid not in failed)
        result.refresh = plan.counts
        return result

    def close(self) -> None:
        self.client.close()

    def _write(
        self,
        writes: Sequence[StoryWrite | Touch | Miss],
        sets: Mapping[int, Document],
        first: Mapping[int, Document],
    ) -> BatchResult:
        """The stories and touches of ``writes``, with their schedules: ``sets`` (``$set``) and ``first``
        (the stories guessed new: ``$setOnInsert``)."""
        stories = [write for write in writes if isinstance(write, StoryWrite)]
        # a 404 of a stored story moves its schedule like an unchanged fetch (the archive keeps it)
        touches = [
            write
            for write in writes
            if isinstance(write, Touch) or (isinstance(write, Miss) and write.sid in sets)
        ]
        result = BatchResult()
        if stories:
            result.add(self._write_stories(stories, sets, first))
        if touches:
            result.add(self._write_touches(touches, sets))
        return result

    def _wrong_guesses(
        self,
        writes: Sequence[StoryWrite | Touch | Miss],
        plan: Plan,
        result: BatchResult,
        gaps_inserted: set[int],
    ) -> list[StoryWrite | Miss]:
        """The writes guessed new that the server found stored (written, not inserted); the counts of
        the others join the plan's (as they would have without a guess, a write refused included)."""
        failed = result.failed_sids
        inserted = set(result.new_sids) | gaps_inserted
        sent_gaps = set(plan.gap_guesses.values())
        wrong: list[StoryWrite | Miss] = []
        for write in writes:
            counts = plan.guesses.get(write.sid)
            if counts is None or isinstance(write, Touch):
                continue
            sent = isinstance(write, StoryWrite) or write.sid in sent_gaps
            if sent and write.sid not in inserted and write.sid not in failed:
                wrong.append(write)
            else:
                plan.add_counts(counts)
        return wrong

    def _recheck(self, wrong: list[StoryWrite | Miss], plan: Plan, result: BatchResult) -> None:
        """Read and write the wrong guesses as a read before the batch would have: a story stored with
        other content is changed, each gets the schedule its stored state gives; a 404 moves its gap
        or its stored story's schedule. One this batch inserted itself keeps its first schedule."""
        assert self.schedules is not None
        plan.count("guessed_new_was_stored", len(wrong))
        recheck = self.schedules.recheck(wrong, plan.now)
        stories: list[StoryWrite] = []
        for write in wrong:
            if write.sid in recheck.mine:
                plan.add_counts(plan.guesses[write.sid])
                if isinstance(write, StoryWrite):  # counted unchanged by its write, which matched
                    result.upserted += 1
                    result.unchanged -= 1
                    result.new_sids.append(write.sid)
            elif isinstance(write, StoryWrite):
                stories.append(write)
        if stories:
            self._rewrite_stories(stories, recheck.plan.sets, recheck.changed, result)
        misses = [write for write in wrong if isinstance(write, Miss) and write.sid in recheck.plan.sets]
        if misses:
            result.add(self._write_touches(misses, recheck.plan.sets))
        self.schedules.apply_gaps(recheck.plan)
        plan.add_counts(recheck.plan.counts)

    def _rewrite_stories(
        self, stories: list[StoryWrite], sets: Mapping[int, Document], changed: set[int], result: BatchResult
    ) -> None:
        """The content (where it ``changed``) and schedule of ``stories``, whose upsert moved only their
        bookkeeping; their counts move from unchanged to modified, or to refused."""
        operations: list[UpdateOne] = []
        owners: list[int] = []
        for position, story in enumerate(stories):
            operations.append(UpdateOne(story.changed_filter, story.changed_update))
            owners.append(position)
            if schedule := sets.get(story.sid):
                operations.append(UpdateOne({"sid": story.sid}, {"$set": schedule}))
                owners.append(position)
        details = _bulk_write(self.collection, operations)
        failed = _sort_write_errors(details, stories, result, owners)
        modified = sum(1 for at, story in enumerate(stories) if story.sid in changed and at not in failed)
        result.modified += modified
        result.unchanged -= modified + len(failed)

    def _write_stories(
        self,
        stories: Sequence[StoryWrite],
        sets: Mapping[int, Document],
        first: Mapping[int, Document],
        isolate_invalid: bool = True,
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
        result = self._write_fitting(stories, sets, first, isolate_invalid)
        result.rejected[:0] = too_large
        return result

    def _write_fitting(
        self,
        stories: Sequence[StoryWrite],
        sets: Mapping[int, Document],
        first: Mapping[int, Document],
        isolate_invalid: bool,
    ) -> BatchResult:
        if not stories:
            return BatchResult()
        operations: list[UpdateOne] = []
        owners: list[int] = []  # the story of each operation
        upserts: set[int] = set()
        for position, story in enumerate(stories):
            if story.sid in first:  # guessed new: the upsert inserts it whole, schedule included
                update = _with_fields(story.upsert_update, "$setOnInsert", first[story.sid])
            else:
                operations.append(UpdateOne(story.changed_filter, story.changed_update))
                owners.append(position)
                update = _with_fields(story.upsert_update, "$set", sets.get(story.sid))
            upserts.add(len(operations))
            operations.append(UpdateOne({"sid": story.sid}, update, upsert=True))
            owners.append(position)
        try:
            details = _bulk_write(self.collection, operations)
        except ENCODING_ERRORS:
            if not isolate_invalid:
                raise
            return self._one_by_one(stories, sets, first)
        result = BatchResult()
        failed = _sort_write_errors(details, stories, result, owners)
        result.upserted = details.get("nUpserted", 0)
        inserted = {entry.get("index") for entry in details.get("upserted", []) if isinstance(entry, dict)}
        result.new_sids = [stories[owners[index]].sid for index in sorted(upserts & inserted)]
        # Every upsert that matched a stored story modified it (fetch_count moves),
        # so what the server modified beyond those is the stories whose content changed.
        errors = details.get("writeErrors", [])
        upserts_done = len(stories) - sum(1 for error in errors if error["index"] in upserts)
        result.modified = max(0, details.get("nModified", 0) - (upserts_done - result.upserted))
        result.unchanged = max(0, len(stories) - len(failed) - result.upserted - result.modified)
        return result

    def _write_touches(self, touches: Sequence[Touch | Miss], sets: Mapping[int, Document]) -> BatchResult:
        operations = [
            UpdateOne(
                {"sid": touch.sid},
                _with_fields(touch.update if isinstance(touch, Touch) else {}, "$set", sets.get(touch.sid)),
            )
            for touch in touches
        ]
        details = _bulk_write(self.collection, operations)
        result = BatchResult(touched=details.get("nModified", 0))
        _sort_write_errors(details, touches, result, range(len(touches)))
        return result

    def _one_by_one(
        self, stories: Sequence[StoryWrite], sets: Mapping[int, Document], first: Mapping[int, Document]
    ) -> BatchResult:
        """Write each story alone, to find the one(s) BSON cannot hold (see :data:`ENCODING_ERRORS`)."""
        result = BatchResult()
        for story in stories:
            try:  # (sizes were checked by _write_stories before the batch)
                result.add(self._write_stories([story], sets, first, isolate_invalid=False))
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


def _with_fields(update: Document, operator: str, fields: Document | None) -> Document:
    """``update`` with ``fields`` added to its ``operator`` (a story's schedule: ``$set``, or
    ``$setOnInsert`` for a story guessed new)."""
    if not fields:
        return update
    return {**update, operator: {**update.get(operator, {}), **fields}}


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
    owners: Sequence[int],
) -> set[int]:
    """Put the writes with a write error in ``result.retry`` or ``result.rejected`` (``owners``: the
    write of each operation); their positions."""
    failed: dict[int, dict[str, Any]] = {}
    for error in details.get("writeErrors", []):
        position = owners[error["index"]]
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
