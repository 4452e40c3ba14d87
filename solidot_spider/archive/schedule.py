"""Each stored story's re-fetch schedule, and the sids that answered 404, in MongoDB.

:class:`Schedules` moves ``next_due`` / ``refresh_interval`` on every fetch by the refresh policy,
keeps gaps in ``<collection>.gaps`` and answers what is due. A fetch of a sid the store doesn't hold
is scheduled without a read (guessed new, checked after the write). Blocking (the store's writer
thread); nothing read from MongoDB is trusted.

Design notes: docs/project-design.md#archive-schedule.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, UpdateOne
from pymongo.collection import Collection

from solidot_spider.archive.documents import StoryWrite, Touch, bson_time
from solidot_spider.archive.known import SidSet, read_sids
from solidot_spider.archive.policy import Clock, Outcome, RefreshPolicy, later
from solidot_spider.site.discovery import MAX_SID

logger = logging.getLogger(__name__)

NEXT_DUE = "next_due"
INTERVAL = "refresh_interval"
#: The gaps collection is the stories collection's name with this suffix.
GAPS_SUFFIX = ".gaps"
#: Documents read or updated per round trip when picking or back-filling.
BATCH = 1000
#: The field a batch's read adds to each gap document, to tell it from a story (never stored).
_GAP = "_gap"

Document = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Miss:
    """A fetch of ``sid`` that answered 404 (a gap, or a stored story gone)."""

    sid: int
    seen_at: datetime


@dataclass(slots=True)
class Plan:
    """What a batch of writes does to the schedules, all fetched at ``now``: ``sets`` (sid → the
    ``$set`` of its story document), the gaps collection's updates (``gap_updates``, and
    ``stored_sids``: gaps that came back as stories, to remove), and counts for the stats.

    Writes guessed new (see :meth:`Schedules.plan`) are apart: ``first`` (sid → the schedule a
    story gets only if its upsert inserts), ``gap_guesses`` (index in ``gap_updates`` → the sid of
    a gap written only if it inserts), and ``guesses`` (sid → the counts its guess adds once the
    write shows that it held).
    """

    now: datetime
    sets: dict[int, Document] = field(default_factory=dict)
    gap_updates: list[UpdateOne] = field(default_factory=list)
    stored_sids: list[int] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    first: dict[int, Document] = field(default_factory=dict)
    gap_guesses: dict[int, int] = field(default_factory=dict)
    guesses: dict[int, dict[str, int]] = field(default_factory=dict)

    def count(self, name: str, value: int = 1) -> None:
        self.counts[name] = self.counts.get(name, 0) + value

    def add_counts(self, counts: dict[str, int]) -> None:
        for name, value in counts.items():
            self.count(name, value)


@dataclass(slots=True)
class Recheck:
    """Writes guessed new whose sid was stored after all, read again (:meth:`Schedules.recheck`):
    ``plan``, their schedules as a read before the write would have made them; ``mine``, the sids
    this batch had inserted itself (an attempt whose reply was lost: the guess held); ``changed``,
    the stories stored with other content (their content is written now)."""

    plan: Plan
    mine: set[int] = field(default_factory=set)
    changed: set[int] = field(default_factory=set)


def valid_sid(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_SID else None


def valid_time(value: Any) -> datetime | None:
    return value if isinstance(value, datetime) and value.tzinfo is not None else None


def valid_interval(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) and value > 0 else None


def gaps_of(stories: Collection[Document]) -> Collection[Document]:
    """The gaps collection that goes with a stories collection."""
    return stories.database[stories.name + GAPS_SUFFIX]


class Schedules:
    """The schedules of one stories collection and its gaps (see the module docstring)."""

    def __init__(self, stories: Collection[Document], policy: RefreshPolicy, clock: Clock) -> None:
        self.stories = stories
        self.gaps = gaps_of(stories)
        self.policy = policy
        self.clock = clock

    def ensure_indexes(self) -> None:
        self.stories.create_index([(NEXT_DUE, ASCENDING)])
        self.gaps.create_index([("sid", ASCENDING)], unique=True)
        self.gaps.create_index([(NEXT_DUE, ASCENDING)])

    # -- after fetches ------------------------------------------------------------------------

    def known_sids(self) -> SidSet:
        """Every sid the store holds, a story's or a gap's: one read of the ``sid`` indexes, by pages."""
        known = SidSet(read_sids(self.stories))
        known.update(read_sids(self.gaps))
        return known

    def plan(self, writes: Sequence[StoryWrite | Touch | Miss], known: SidSet | None = None) -> Plan:
        """The schedule updates of a batch of writes, all fetched "now" (the clock's).

        With ``known`` (the sids this worker knows the store holds), a story or a 404 whose sid is
        not in it, alone of its sid in the batch, is guessed new: its schedule needs nothing stored
        (a new story starts at its bound, a gap at its first miss), so its sid is not read, and the
        store writes that schedule only where its upsert inserts. The batch reads the other sids
        (stored stories, gaps, touches), in one round trip, or none: a historical crawl's batches
        read nothing. The store checks every guess after its write (:meth:`recheck`).
        """
        plan = Plan(self.clock())
        if not writes:
            return plan
        guessed = _guessable(writes, known)
        wanted = {write.sid for write in writes} - guessed
        stored, gaps = self._read_with_gaps(wanted) if wanted else ({}, {})
        for write in writes:
            if write.sid in guessed:
                self._guess(plan, write)
            else:
                self._plan_safely(plan, write, stored, gaps)
        return plan

    def recheck(self, writes: Sequence[StoryWrite | Miss], now: datetime) -> Recheck:
        """Writes guessed new whose upsert found their sid stored, read now and scheduled as
        :meth:`plan` would have with a read (a story's upsert moved only its bookkeeping: its content
        and schedule are as they were)."""
        stored, gaps = self._read_with_gaps({write.sid for write in writes})
        recheck = Recheck(Plan(now))
        for write in writes:
            if isinstance(write, StoryWrite):
                document = stored.get(write.sid, {})
                # the first_seen of this very write: its own insert, in an attempt whose reply was lost
                first_seen = write.upsert_update["$setOnInsert"].get("first_seen")
                mine = first_seen is not None and valid_time(document.get("first_seen")) == first_seen
                if write.sid in stored and document.get("content_hash") != write.content_hash:
                    recheck.changed.add(write.sid)
            else:
                mine = valid_time(gaps.get(write.sid, {}).get("first_missed")) == bson_time(write.seen_at)
            if mine:
                recheck.mine.add(write.sid)
                recheck.changed.discard(write.sid)
            else:
                self._plan_safely(recheck.plan, write, stored, gaps)
        return recheck

    def _guess(self, plan: Plan, write: StoryWrite | Touch | Miss) -> None:
        """Plan ``write`` as the first of its sid, apart (see :class:`Plan`)."""
        alone = Plan(plan.now)
        self._plan_safely(alone, write, {}, {}, insert_only=True)
        plan.guesses[write.sid] = alone.counts
        if isinstance(write, StoryWrite):
            plan.first[write.sid] = alone.sets.get(write.sid, {})
        for update in alone.gap_updates:
            plan.gap_guesses[len(plan.gap_updates)] = write.sid
            plan.gap_updates.append(update)

    def _plan_safely(
        self,
        plan: Plan,
        write: StoryWrite | Touch | Miss,
        stored: dict[int, Document],
        gaps: dict[int, Document],
        insert_only: bool = False,
    ) -> None:
        try:
            self._plan_one(plan, write, stored, gaps, insert_only)
        except Exception as error:  # one story's schedule: never the batch (its story is still written)
            plan.sets.pop(write.sid, None)
            plan.count("schedule_failed")
            logger.error(
                "Refresh: cannot schedule sid %s (%s: %s); written, its schedule left as it was",
                write.sid,
                type(error).__name__,
                error,
            )

    def _plan_one(
        self,
        plan: Plan,
        write: StoryWrite | Touch | Miss,
        stored: dict[int, Document],
        gaps: dict[int, Document],
        insert_only: bool = False,
    ) -> None:
        """One write's schedule update, added to ``plan``, fetched at ``plan.now`` (a gap's,
        ``insert_only``: written only where it inserts)."""
        document = stored.get(write.sid)
        if isinstance(write, Miss):
            if document is None:
                self._missed(plan, write, gaps, insert_only)
                return
            plan.count("stored_missing")  # the archive keeps it; looked at again later
            outcome: Outcome = "unchanged"
        elif isinstance(write, Touch):
            if document is None:
                return  # a touch of a story not stored: the store leaves it alone too
            outcome = "unchanged"
        elif document is None:
            outcome = "new"
            document = {"published": write.upsert_update["$setOnInsert"].get("published")}
        else:
            outcome = "unchanged" if document.get("content_hash") == write.content_hash else "changed"
        if write.sid in gaps and write.sid not in plan.stored_sids:
            # a gap that came back as a story goes (or one another worker left beside a stored story)
            plan.stored_sids.append(write.sid)
        schedule = self.policy.after_fetch(
            outcome,
            write.sid,
            valid_time(document.get("published")),
            plan.now,
            None if outcome == "new" else valid_interval(document.get(INTERVAL)),
        )
        document = {**document, INTERVAL: schedule.interval}
        if isinstance(write, StoryWrite):
            document["content_hash"] = write.content_hash
        stored[write.sid] = document
        plan.sets[write.sid] = {NEXT_DUE: bson_time(schedule.next_due), INTERVAL: schedule.interval}
        plan.count(f"scheduled/{outcome}")

    def _missed(self, plan: Plan, miss: Miss, gaps: dict[int, Document], insert_only: bool = False) -> None:
        previous = gaps.get(miss.sid, {}).get("misses")
        misses = (
            previous if isinstance(previous, int) and not isinstance(previous, bool) and previous > 0 else 0
        ) + 1
        gaps[miss.sid] = {"misses": misses}
        due = self.policy.after_miss(misses, plan.now)
        plan.count("gaps/missed")
        if due is None:
            plan.count("gaps/left_alone")
        seen = bson_time(miss.seen_at)
        fields = {"misses": misses, "last_missed": seen, NEXT_DUE: None if due is None else bson_time(due)}
        if insert_only:  # a gap guessed new: a stored one is left as it was, for recheck()
            update = {"$setOnInsert": {**fields, "first_missed": seen}}
        else:
            update = {"$set": fields, "$setOnInsert": {"first_missed": seen}}
        plan.gap_updates.append(UpdateOne({"sid": miss.sid}, update, upsert=True))

    def apply_gaps(self, plan: Plan) -> set[int]:
        """Write the plan's gap updates and remove the gaps that came back as stories; → the sids of
        the gaps guessed new that the write inserted."""
        inserted: set[int] = set()
        if plan.gap_updates:
            written = self.gaps.bulk_write(plan.gap_updates, ordered=False)
            guesses = plan.gap_guesses
            inserted = {guesses[index] for index in written.upserted_ids or {} if index in guesses}
        if plan.stored_sids:
            filled = self.gaps.delete_many({"sid": {"$in": plan.stored_sids}}).deleted_count
            if filled:
                plan.count("gaps/filled", filled)
        return inserted

    def _read_with_gaps(self, sids: Iterable[int]) -> tuple[dict[int, Document], dict[int, Document]]:
        """The stored stories (``content_hash``, ``published``, interval, ``first_seen``) and the gaps
        (``misses``, ``first_missed``) among ``sids``, by sid: one round trip (a ``$unionWith`` of the
        gaps), on the ``sid`` indexes. Knowing the gaps of every sid, a batch touches the gaps
        collection only when it holds a 404 or a story that was a gap."""
        wanted = sorted(sids)
        stored: dict[int, Document] = {}
        gaps: dict[int, Document] = {}
        story_fields = {"_id": 0, "sid": 1, "content_hash": 1, "published": 1, INTERVAL: 1, "first_seen": 1}
        for start in range(0, len(wanted), BATCH):
            match = {"$match": {"sid": {"$in": wanted[start : start + BATCH]}}}
            gap_fields = {"_id": 0, "sid": 1, "misses": 1, "first_missed": 1, _GAP: {"$literal": True}}
            union = {"$unionWith": {"coll": self.gaps.name, "pipeline": [match, {"$project": gap_fields}]}}
            for document in self.stories.aggregate([match, {"$project": story_fields}, union]):
                sid = valid_sid(document.get("sid"))
                if sid is None:
                    continue
                if document.pop(_GAP, None) is True:  # only the gaps' projection can set it
                    gaps[sid] = document
                else:
                    stored[sid] = document
        return stored, gaps

    # -- picking what is due ---------------------------------------------------------------------

    def backfill(self) -> int:
        """Give every stored story without a schedule one, from its last fetch (stories stored before
        the refresh policy existed): none is due at once just for lacking one. Returns how many."""
        now = self.clock()
        done = 0
        while True:
            documents = list(
                self.stories.find(
                    {NEXT_DUE: {"$exists": False}}, {"_id": 0, "sid": 1, "published": 1, "last_seen": 1}
                ).limit(BATCH)
            )
            updates = []
            for document in documents:
                sid = valid_sid(document.get("sid"))
                if sid is None:
                    continue
                fetched = valid_time(document.get("last_seen")) or now
                schedule = self.policy.after_fetch("new", sid, valid_time(document.get("published")), fetched)
                fields = {NEXT_DUE: bson_time(schedule.next_due), INTERVAL: schedule.interval}
                updates.append(UpdateOne({"sid": sid, NEXT_DUE: {"$exists": False}}, {"$set": fields}))
            if updates:
                self.stories.bulk_write(updates, ordered=False)
            done += len(updates)
            if len(documents) < BATCH or not updates:
                if len(updates) < len(documents):
                    logger.warning(
                        "Refresh: %d stored documents without a valid sid have no schedule",
                        len(documents) - len(updates),
                    )
                return done

    def due(self, limit: int) -> Due:
        """The sids due by now, the most overdue first, at most ``limit`` (stories and gaps together)."""
        now = bson_time(self.clock())
        found: list[tuple[datetime, int, bool]] = []
        more = False
        for collection, gap in ((self.stories, False), (self.gaps, True)):
            cursor = (
                collection.find({NEXT_DUE: {"$type": "date", "$lte": now}}, {"_id": 0, "sid": 1, NEXT_DUE: 1})
                .sort(NEXT_DUE, ASCENDING)
                .limit(limit)
            )
            read = 0
            for document in cursor:
                read += 1
                sid, when = valid_sid(document.get("sid")), valid_time(document.get(NEXT_DUE))
                if sid is not None and when is not None:
                    found.append((when, sid, gap))
            more = more or read >= limit  # the query stopped at the limit: it may have left some
        found.sort()
        picked = found[:limit]
        more = more or len(found) > limit
        return Due(
            stories=[sid for _, sid, gap in picked if not gap],
            gaps=[sid for _, sid, gap in picked if gap],
            more=more,
            now=now,
        )

    def claim(self, due: Due) -> None:
        """Move the picked sids' ``next_due`` past the claim time, so that a refresh run before their
        fetch doesn't pick them again (the fetch sets the real next one; a lost one is due after it)."""
        until = bson_time(later(due.now, self.policy.claim))
        for collection, sids in ((self.stories, due.stories), (self.gaps, due.gaps)):
            for start in range(0, len(sids), BATCH):
                collection.update_many(
                    {"sid": {"$in": sids[start : start + BATCH]}, NEXT_DUE: {"$lte": due.now}},
                    {"$set": {NEXT_DUE: until}},
                )


def _guessable(writes: Sequence[StoryWrite | Touch | Miss], known: SidSet | None) -> set[int]:
    """The sids of ``writes`` that :meth:`Schedules.plan` guesses new: a story's or a 404's, not in
    ``known``, alone of its sid in the batch (a second write of a sid depends on the first's)."""
    if known is None:
        return set()
    times = Counter(write.sid for write in writes)
    return {
        write.sid
        for write in writes
        if isinstance(write, StoryWrite | Miss) and times[write.sid] == 1 and write.sid not in known
    }


@dataclass(frozen=True, slots=True)
class Due:
    """What a refresh picked: stored stories and gaps due by ``now``; ``more``: others are due too."""

    stories: list[int]
    gaps: list[int]
    more: bool
    now: datetime

    @property
    def sids(self) -> list[int]:
        return self.stories + self.gaps
