"""Each stored story's re-fetch schedule, and the sids that answered 404, in MongoDB.

:class:`Schedules` moves ``next_due`` / ``refresh_interval`` on every fetch by the refresh policy,
keeps gaps in ``<collection>.gaps`` and answers what is due. Blocking (the store's writer thread);
nothing read from MongoDB is trusted.

Design notes: docs/project-design.md#archive-schedule.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, UpdateOne
from pymongo.collection import Collection

from solidot_spider.archive.documents import StoryWrite, Touch, bson_time
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
    """What a batch of writes does to the schedules: ``sets`` (sid → the ``$set`` of its story
    document), the gaps collection's updates (``gap_updates``, and ``stored_sids``: gaps that came
    back as stories, to remove), and counts for the stats."""

    sets: dict[int, Document] = field(default_factory=dict)
    gap_updates: list[UpdateOne] = field(default_factory=list)
    stored_sids: list[int] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    def count(self, name: str, value: int = 1) -> None:
        self.counts[name] = self.counts.get(name, 0) + value


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

    def plan(self, writes: Sequence[StoryWrite | Touch | Miss]) -> Plan:
        """The schedule updates of a batch of writes, all fetched "now" (the clock's)."""
        plan = Plan()
        if not writes:
            return plan
        now = self.clock()
        stored, gaps = self._read_with_gaps({write.sid for write in writes})
        for write in writes:
            try:
                self._plan_one(plan, write, stored, gaps, now)
            except Exception as error:  # one story's schedule: never the batch (its story is still written)
                plan.sets.pop(write.sid, None)
                plan.count("schedule_failed")
                logger.error(
                    "Refresh: cannot schedule sid %s (%s: %s); written, its schedule left as it was",
                    write.sid,
                    type(error).__name__,
                    error,
                )
        return plan

    def _plan_one(
        self,
        plan: Plan,
        write: StoryWrite | Touch | Miss,
        stored: dict[int, Document],
        gaps: dict[int, Document],
        now: datetime,
    ) -> None:
        """One write's schedule update, added to ``plan``."""
        document = stored.get(write.sid)
        if isinstance(write, Miss):
            if document is None:
                self._missed(plan, write, gaps, now)
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
            now,
            None if outcome == "new" else valid_interval(document.get(INTERVAL)),
        )
        document = {**document, INTERVAL: schedule.interval}
        if isinstance(write, StoryWrite):
            document["content_hash"] = write.content_hash
        stored[write.sid] = document
        plan.sets[write.sid] = {NEXT_DUE: bson_time(schedule.next_due), INTERVAL: schedule.interval}
        plan.count(f"scheduled/{outcome}")

    def _missed(self, plan: Plan, miss: Miss, gaps: dict[int, Document], now: datetime) -> None:
        previous = gaps.get(miss.sid, {}).get("misses")
        misses = (
            previous if isinstance(previous, int) and not isinstance(previous, bool) and previous > 0 else 0
        ) + 1
        gaps[miss.sid] = {"misses": misses}
        due = self.policy.after_miss(misses, now)
        plan.count("gaps/missed")
        if due is None:
            plan.count("gaps/left_alone")
        plan.gap_updates.append(
            UpdateOne(
                {"sid": miss.sid},
                {
                    "$set": {
                        "misses": misses,
                        "last_missed": bson_time(miss.seen_at),
                        NEXT_DUE: None if due is None else bson_time(due),
                    },
                    "$setOnInsert": {"first_missed": bson_time(miss.seen_at)},
                },
                upsert=True,
            )
        )

    def apply_gaps(self, plan: Plan) -> None:
        """Write the plan's gap updates and remove the gaps that came back as stories."""
        if plan.gap_updates:
            self.gaps.bulk_write(plan.gap_updates, ordered=False)
        if plan.stored_sids:
            filled = self.gaps.delete_many({"sid": {"$in": plan.stored_sids}}).deleted_count
            if filled:
                plan.count("gaps/filled", filled)

    def _read_with_gaps(self, sids: Iterable[int]) -> tuple[dict[int, Document], dict[int, Document]]:
        """The stored stories (``content_hash``, ``published``, interval) and the gaps (``misses``)
        among ``sids``, by sid: one round trip (a ``$unionWith`` of the gaps), on the ``sid`` indexes.
        Knowing the gaps of every sid, a batch touches the gaps collection only when it holds a
        404 or a story that was a gap."""
        wanted = sorted(sids)
        stored: dict[int, Document] = {}
        gaps: dict[int, Document] = {}
        story_fields = {"_id": 0, "sid": 1, "content_hash": 1, "published": 1, INTERVAL: 1}
        for start in range(0, len(wanted), BATCH):
            match = {"$match": {"sid": {"$in": wanted[start : start + BATCH]}}}
            gap_fields = {"_id": 0, "sid": 1, "misses": 1, _GAP: {"$literal": True}}
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
