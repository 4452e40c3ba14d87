"""One round trip per store batch in the steady state: a batch of sids new to the store reads
nothing (each story's first schedule is set on insert), a batch reads the stored schedules (and
gaps, one ``$unionWith``) only of the sids the store holds, and the gaps collection is written only
for a batch that holds a 404 or a story that was a gap. Counted with pymongo's command monitoring on
a real wire server."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from mongo_server import MongoServer
from pymongo import MongoClient, monitoring
from store_spider import make_story

from solidot_spider.archive.documents import story_write
from solidot_spider.archive.mongo import MongoStore
from solidot_spider.archive.policy import RefreshPolicy
from solidot_spider.archive.schedule import Miss

NOW = datetime(2026, 10, 11, tzinfo=UTC)


class Commands(monitoring.CommandListener):
    """The commands sent to one database (other tests' databases and handshakes aside)."""

    def __init__(self) -> None:
        self.database = ""
        self.seen: list[str] = []
        self.read: list[int] = []  # the sids the batch's reads asked for

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.database_name == self.database and self.database:
            self.seen.append(f"{event.command_name} {event.command.get(event.command_name)}")
            if event.command_name == "aggregate":
                self.read += event.command["pipeline"][0]["$match"]["sid"]["$in"]

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass

    def during(self, action: Any) -> tuple[Any, list[str]]:
        self.seen, self.read = [], []
        result = action()
        return result, self.seen


COMMANDS = Commands()
monitoring.register(COMMANDS)  # clients made from now on report to it (it counts one database only)


def test_a_batch_reads_only_the_sids_the_store_holds_and_touches_gaps_only_when_it_must(
    mongo: MongoServer, mongo_db_name: str
) -> None:
    COMMANDS.database = mongo_db_name
    store = MongoStore(mongo.uri, mongo_db_name, "stories", policy=RefreshPolicy(), clock=lambda: NOW)
    try:
        _, commands = COMMANDS.during(store.prepare)  # the indexes, and the sids the store holds
        assert [command for command in commands if command.startswith("find")] == [
            "find stories",
            "find stories.gaps",
        ]
        new = [story_write(make_story(sid), NOW) for sid in (1, 2, 3)]
        result, commands = COMMANDS.during(lambda: store.write_batch(new))
        assert commands == ["update stories"]  # was: aggregate (the schedules and gaps), update
        assert result.upserted == 3 and result.refresh == {"scheduled/new": 3}

        again = [story_write(make_story(sid), NOW) for sid in (1, 2)]  # re-crawled, unchanged
        result, commands = COMMANDS.during(lambda: store.write_batch(again))
        assert commands == ["aggregate stories", "update stories"]
        assert result.unchanged == 2 and result.refresh == {"scheduled/unchanged": 2}

        with_404 = [story_write(make_story(4), NOW), Miss(10, NOW)]
        result, commands = COMMANDS.during(lambda: store.write_batch(with_404))
        assert commands == ["update stories", "update stories.gaps"]  # was: aggregate first
        assert result.refresh == {"scheduled/new": 1, "gaps/missed": 1}

        missed_again = [Miss(10, NOW), Miss(3, NOW)]  # a gap again, and a stored story gone
        result, commands = COMMANDS.during(lambda: store.write_batch(missed_again))
        assert commands == ["aggregate stories", "update stories", "update stories.gaps"]
        assert result.refresh == {"gaps/missed": 1, "stored_missing": 1, "scheduled/unchanged": 1}

        came_back = [story_write(make_story(10), NOW), story_write(make_story(5), NOW)]
        result, commands = COMMANDS.during(lambda: store.write_batch(came_back))
        assert commands == ["aggregate stories", "update stories", "delete stories.gaps"]
        assert COMMANDS.read == [10]  # the gap; 5 is new
        assert result.refresh == {"scheduled/new": 2, "gaps/filled": 1}

        mixed = [story_write(make_story(sid), NOW) for sid in (6, 2, 7)]  # a refresh among new ones
        result, commands = COMMANDS.during(lambda: store.write_batch(mixed))
        assert commands == ["aggregate stories", "update stories"] and COMMANDS.read == [2]
        assert (result.upserted, result.unchanged) == (2, 1)
        assert result.refresh == {"scheduled/new": 2, "scheduled/unchanged": 1}
    finally:
        COMMANDS.database = ""
        store.close()
    with MongoClient(mongo.uri, serverSelectionTimeoutMS=5000) as client:
        database = client[mongo_db_name]
        assert sorted(doc["sid"] for doc in database["stories"].find()) == [1, 2, 3, 4, 5, 6, 7, 10]
        assert database["stories.gaps"].count_documents({}) == 0
        assert all("_gap" not in doc for doc in database["stories"].find())


def test_a_store_reads_the_sids_it_holds_at_its_first_batch_and_counts_a_write_twice_once(
    mongo: MongoServer, mongo_db_name: str
) -> None:
    """Without :meth:`MongoStore.prepare`, the first batch reads the sids; the same sid twice in a
    batch is read (its second write depends on the first's)."""
    COMMANDS.database = mongo_db_name
    store = MongoStore(mongo.uri, mongo_db_name, "stories", policy=RefreshPolicy(), clock=lambda: NOW)
    try:
        store.ensure_indexes()
        twice = [story_write(make_story(1), NOW), story_write(make_story(1, views=7), NOW)]
        result, commands = COMMANDS.during(lambda: store.write_batch(twice))
        assert commands == ["find stories", "find stories.gaps", "aggregate stories", "update stories"]
        assert (result.upserted, result.modified) == (1, 1)
        assert result.refresh == {"scheduled/new": 1, "scheduled/changed": 1}
    finally:
        COMMANDS.database = ""
        store.close()


def test_a_stored_document_cannot_pass_for_a_gap(mongo: MongoServer, mongo_db_name: str) -> None:
    """Nothing read from MongoDB is trusted: a story document with the read's own gap marker is a story."""
    store = MongoStore(mongo.uri, mongo_db_name, "stories", policy=RefreshPolicy(), clock=lambda: NOW)
    try:
        store.ensure_indexes()
        store.collection.insert_one({"sid": 7, "_gap": True, "misses": 2, "content_hash": "x"})
        assert store.schedules is not None
        stored, gaps = store.schedules._read_with_gaps([7])
        assert set(stored) == {7} and gaps == {}
    finally:
        store.close()


def test_a_gap_left_beside_a_stored_story_goes_with_its_next_fetch(
    mongo: MongoServer, mongo_db_name: str
) -> None:
    """A 404 recorded by another worker while this one stored the story (a redone request): the gap
    would come due again and again; the story's next write removes it."""
    store = MongoStore(mongo.uri, mongo_db_name, "stories", policy=RefreshPolicy(), clock=lambda: NOW)
    try:
        store.ensure_indexes()
        store.write_batch([story_write(make_story(8), NOW)])
        store.collection.database["stories.gaps"].insert_one({"sid": 8, "misses": 1, "next_due": NOW})
        result = store.write_batch([story_write(make_story(8), NOW)])
        assert result.refresh == {"scheduled/unchanged": 1, "gaps/filled": 1}
        assert store.collection.database["stories.gaps"].count_documents({}) == 0
    finally:
        store.close()
