"""A sid the store doesn't know is guessed new and written without a read: what if it was stored?

By another worker since this one read the sids it holds, or by an attempt of the same batch whose
reply was lost. Either way the write's results, counts and documents must be those of a store that
read first (a real wire server; another store instance plays the other worker).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from mongo_server import MongoServer
from pymongo import MongoClient
from pymongo.collection import Collection
from pymongo.errors import AutoReconnect
from store_spider import make_story

from solidot_spider.archive import known
from solidot_spider.archive.documents import StoryWrite, Touch, story_write
from solidot_spider.archive.known import SidSet
from solidot_spider.archive.mongo import BatchResult, MongoStore
from solidot_spider.archive.policy import RefreshPolicy
from solidot_spider.archive.schedule import Miss

POLICY = RefreshPolicy()
EARLIER = datetime(2026, 10, 1, tzinfo=UTC)
NOW = datetime(2026, 10, 11, tzinfo=UTC)


def open_store(mongo: MongoServer, database: str, collection: str, when: datetime = NOW) -> MongoStore:
    store = MongoStore(mongo.uri, database, collection, policy=POLICY, clock=lambda: when)
    store.prepare()
    return store


def documents(mongo: MongoServer, database: str, collection: str, *without: str) -> dict[int, Any]:
    with MongoClient(mongo.uri, serverSelectionTimeoutMS=5000, tz_aware=True) as client:
        return {
            doc["sid"]: {name: value for name, value in doc.items() if name not in ("_id", *without)}
            for doc in client[database][collection].find({})
        }


def counts(result: BatchResult) -> tuple[Any, ...]:
    return result.upserted, result.modified, result.unchanged, result.touched, result.refresh


def another_worker_writes(mongo: MongoServer, database: str, collection: str) -> None:
    """Stories 1, 2, 9 and 10 and gaps 7, 9 and 10 (two left beside a story by a race), at EARLIER."""
    other = open_store(mongo, database, collection, EARLIER)
    try:
        other.write_batch(
            [story_write(make_story(sid), EARLIER) for sid in (1, 2, 9, 10)] + [Miss(7, EARLIER)]
        )
        for sid in (9, 10):
            other.schedules.gaps.insert_one({"sid": sid, "misses": 1, "next_due": NOW})  # type: ignore[union-attr]
    finally:
        other.close()


#: One of each: stored unchanged, stored changed, a gap missed again, a story with a gap beside it,
#: a 404 of a stored story with a gap beside it, a new story, a new gap.
BATCH: list[StoryWrite | Touch | Miss] = [
    story_write(make_story(1), NOW),
    story_write(make_story(2, views=999), NOW),
    Miss(7, NOW),
    story_write(make_story(9), NOW),
    Miss(10, NOW),
    story_write(make_story(20), NOW),
    Miss(21, NOW),
]


def test_sids_stored_by_another_worker_after_this_one_read_its_sids_are_written_as_with_a_read(
    mongo: MongoServer, mongo_db_name: str
) -> None:
    guessing = open_store(mongo, mongo_db_name, "guessing")  # knows nothing: the others write later
    another_worker_writes(mongo, mongo_db_name, "guessing")
    another_worker_writes(mongo, mongo_db_name, "reading")
    reading = open_store(mongo, mongo_db_name, "reading")  # knows them: reads them first
    try:
        guessed = guessing.write_batch(BATCH)
        read = reading.write_batch(BATCH)
    finally:
        guessing.close()
        reading.close()
    assert counts(read) == (
        1,
        1,
        2,
        1,
        {
            "scheduled/unchanged": 3,
            "scheduled/changed": 1,
            "scheduled/new": 1,
            "gaps/missed": 2,
            "stored_missing": 1,
            "gaps/filled": 2,
        },
    )
    assert guessed.refresh.pop("guessed_new_was_stored") == 5  # all but 20 and 21
    assert counts(guessed) == counts(read)
    assert documents(mongo, mongo_db_name, "guessing") == documents(mongo, mongo_db_name, "reading")
    gaps = documents(mongo, mongo_db_name, "guessing.gaps")
    assert gaps == documents(mongo, mongo_db_name, "reading.gaps")
    assert sorted(gaps) == [7, 21] and gaps[7]["misses"] == 2


@pytest.mark.parametrize("lost", ["stories", "stories.gaps"])
def test_a_batch_written_again_after_a_lost_reply_counts_and_schedules_its_new_sids_once(
    mongo: MongoServer, mongo_db_name: str, monkeypatch: pytest.MonkeyPatch, lost: str
) -> None:
    """The pipeline writes a batch again when MongoDB didn't answer: its upserts may have inserted.
    Found stored, each is read, and its own ``first_seen`` (or ``first_missed``) tells it apart
    from another worker's: still new, with the schedule it got, counted once (the lost attempt's
    counts were never reported)."""
    batch = [story_write(make_story(sid), NOW) for sid in (1, 2)] + [Miss(30, NOW)]
    once = open_store(mongo, mongo_db_name, "once")
    store = open_store(mongo, mongo_db_name, "stories")
    write = Collection.bulk_write
    losses = [lost]

    def bulk_write_reply_lost(self: Collection[Any], *args: Any, **kwargs: Any) -> Any:
        written = write(self, *args, **kwargs)
        if self.database.name == mongo_db_name and self.name in losses:
            losses.remove(self.name)
            raise AutoReconnect("connection closed before the reply")
        return written

    try:
        expected = once.write_batch(batch)
        monkeypatch.setattr(Collection, "bulk_write", bulk_write_reply_lost)
        with pytest.raises(AutoReconnect):
            store.write_batch(batch)
        result = store.write_batch(batch)  # as the pipeline does: the whole batch again
    finally:
        once.close()
        store.close()
    assert result.refresh.pop("guessed_new_was_stored") == (2 if lost == "stories" else 3)
    assert counts(result) == counts(expected) == (2, 0, 0, 0, {"scheduled/new": 2, "gaps/missed": 1})
    assert sorted(result.new_sids) == [1, 2]
    stored = documents(mongo, mongo_db_name, "stories", "fetch_count")  # counted twice, as documented
    assert stored == documents(mongo, mongo_db_name, "once", "fetch_count")
    assert documents(mongo, mongo_db_name, "stories.gaps") == documents(mongo, mongo_db_name, "once.gaps")


def test_a_new_story_whose_gap_another_worker_wrote_since_leaves_it_to_its_next_write(
    mongo: MongoServer, mongo_db_name: str
) -> None:
    """The one thing a guess doesn't see: a gap written by another worker after this one read its
    sids, for a story this one then stores (inserted: no read). Its next write removes the gap."""
    store = open_store(mongo, mongo_db_name, "stories")
    try:
        assert store.schedules is not None
        store.schedules.gaps.insert_one({"sid": 8, "misses": 1, "next_due": NOW})
        first = store.write_batch([story_write(make_story(8), NOW)])
        assert first.refresh == {"scheduled/new": 1}
        assert store.schedules.gaps.count_documents({}) == 1
        again = store.write_batch([story_write(make_story(8), NOW)])
        assert again.refresh == {"scheduled/unchanged": 1, "gaps/filled": 1}
        assert store.schedules.gaps.count_documents({}) == 0
    finally:
        store.close()


def test_the_sids_a_store_holds_are_read_in_pages_and_only_valid_ones_count(
    mongo: MongoServer, mongo_db_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(known, "PAGE", 2)
    with MongoClient(mongo.uri, serverSelectionTimeoutMS=5000) as client:
        database = client[mongo_db_name]
        database["stories"].insert_many(
            [{"sid": sid} for sid in (5, 1, 3, 2.5, 9.5, "7", 10**12, 70_000_000)] + [{"title": "no sid"}]
        )
        database["stories.gaps"].insert_many([{"sid": 4}, {"sid": 6}])
    store = open_store(mongo, mongo_db_name, "stories")
    try:
        assert store.known is not None
        assert [sid for sid in range(12) if sid in store.known] == [1, 3, 4, 5, 6]
        assert 70_000_000 in store.known and len(store.known) == 6
    finally:
        store.close()


def test_a_sid_set_holds_what_was_added() -> None:
    sids = SidSet([1, 8, 9, 100_000, 1 << 30])
    sids.add(8)
    assert [sid for sid in (0, 1, 2, 8, 9, 10, 99_999, 100_000, 1 << 30) if sid in sids] == [
        1,
        8,
        9,
        100_000,
        1 << 30,
    ]
    assert len(sids) == 5 and "8" not in sids and -1 not in sids
