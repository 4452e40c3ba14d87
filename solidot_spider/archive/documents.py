"""A story item as MongoDB updates: one document per story, upserted by ``sid``.

A stored document is the item as it was plus bookkeeping (content hashes, ``published``, first and
last seen, fetch count, the refresh schedule): :func:`story_write` builds the update,
:func:`stored_item` reads a document back.

Design notes: docs/project-design.md#archive-documents.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

# One hash for dedupe and store alike; re-exported as the store's own vocabulary.
from solidot_spider.site.content import HASHED_FIELDS as CONTENT_FIELDS
from solidot_spider.site.content import content_hash
from solidot_spider.site.text import BEIJING

__all__ = [
    "BOOKKEEPING_FIELDS",
    "CONTENT_FIELDS",
    "HASH_HISTORY",
    "StoryWrite",
    "Touch",
    "bson_time",
    "content_hash",
    "published_datetime",
    "stored_item",
    "story_write",
]

#: How many content hashes a document keeps (the newest ones).
HASH_HISTORY = 50

#: Fields the store adds to an item; a stored document minus these is the item.
BOOKKEEPING_FIELDS: tuple[str, ...] = (
    "_id",
    "content_hash",
    "content_hashes",
    "published",
    "first_seen",
    "last_seen",
    "fetch_count",
    # the re-fetch schedule (storage/schedule.py)
    "next_due",
    "refresh_interval",
)

Document = dict[str, Any]


def published_datetime(published_at: str | None) -> datetime | None:
    """``published_at`` as an aware UTC datetime (None if absent or not ISO 8601).

    >>> published_datetime("2025-01-03T14:01:00+08:00")
    datetime.datetime(2025, 1, 3, 6, 1, tzinfo=datetime.timezone.utc)
    """
    if not published_at:
        return None
    try:
        moment = datetime.fromisoformat(published_at)
    except ValueError:
        return None
    if moment.tzinfo is None:  # Solidot prints Beijing time
        moment = moment.replace(tzinfo=BEIJING)
    return moment.astimezone(UTC)


def bson_time(moment: datetime) -> datetime:
    """``moment`` in UTC, cut to milliseconds: exactly what a BSON date stores and reads back."""
    moment = moment.astimezone(UTC)
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


@dataclass(frozen=True, slots=True)
class StoryWrite:
    """The two updates that store one story, both keyed by ``sid``.

    ``changed`` replaces the content only where the stored hash differs, so the
    server's count of modified documents is the count of changed stories — no
    read needed. ``upsert`` inserts a new story whole and, for an existing one,
    moves the bookkeeping (``last_seen``, ``fetch_count``, ``categories``). One
    update cannot do both: the bookkeeping modifies every existing document.
    Written in this order; either order gives the same document.
    """

    sid: int
    content_hash: str
    changed_filter: Document
    changed_update: Document
    upsert_update: Document


@dataclass(frozen=True, slots=True)
class Touch:
    """A fetch of a story whose content is unchanged: only ``last_seen`` and ``fetch_count`` move."""

    sid: int
    seen_at: datetime

    @property
    def update(self) -> Document:
        return {"$max": {"last_seen": bson_time(self.seen_at)}, "$inc": {"fetch_count": 1}}


def story_write(item: Mapping[str, Any], seen_at: datetime, known_hash: str | None = None) -> StoryWrite:
    """The updates that store ``item`` (a plain dict, e.g. ``ItemAdapter(item).asdict()``).

    ``known_hash`` is the :func:`content_hash` when the caller already has it (a
    dedupe pipeline); otherwise it is computed here.
    """
    fields = dict(item)
    sid = fields.pop("sid")
    categories = list(fields.pop("categories", None) or [])
    digest = known_hash or content_hash(item)
    content: Document = {**fields, "content_hash": digest}
    published = published_datetime(fields.get("published_at"))
    if published is not None:
        content["published"] = published
    seen = bson_time(seen_at)
    return StoryWrite(
        sid=sid,
        content_hash=digest,
        changed_filter={"sid": sid, "content_hash": {"$ne": digest}},
        changed_update={
            "$set": content,
            "$push": {"content_hashes": {"$each": [digest], "$slice": -HASH_HISTORY}},
        },
        upsert_update={
            "$setOnInsert": {**content, "content_hashes": [digest], "first_seen": seen},
            "$max": {"last_seen": seen},
            "$inc": {"fetch_count": 1},
            "$addToSet": {"categories": {"$each": categories}},
        },
    )


def stored_item(document: Mapping[str, Any]) -> Document:
    """A stored document without the store's bookkeeping: the item's fields again."""
    return {name: value for name, value in document.items() if name not in BOOKKEEPING_FIELDS}
