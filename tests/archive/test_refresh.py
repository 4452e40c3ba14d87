"""Refreshing the archive against real servers: schedules and gaps written by the store into a MongoDB
wire server (a clock the test moves), a crawl of the replica followed a day later by
``scrapy crawl solidot -a refresh=true`` against ``--revision 1``, and ``solidot-crawl seed --refresh``
into a private Redis."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from harness import ROOT, replica_server, run_crawl
from mongo_server import MongoServer
from pymongo import MongoClient
from truth import mismatches

from solidot_replica import Replica, ReplicaConfig
from solidot_spider.archive.documents import Touch, stored_item, story_write
from solidot_spider.archive.mongo import MongoStore
from solidot_spider.archive.policy import DAY, HOUR, RefreshPolicy
from solidot_spider.archive.schedule import Miss, Schedules
from solidot_spider.site.discovery import Discovery
from solidot_spider.site.text import BEIJING

STORIES, LAST_SID = 300, 80300
BASE_URL = "http://www.solidot.test:8080"
POLICY = RefreshPolicy()


class Clock:
    """The time the store and the policy see: moved by the test, never by waiting."""

    def __init__(self, moment: datetime) -> None:
        self.moment = moment

    def __call__(self) -> datetime:
        return self.moment

    def advance(self, seconds: float) -> None:
        self.moment += timedelta(seconds=seconds)


def day_after(day: date) -> datetime:
    """Midnight (Beijing) after ``day``: when a replica whose newest day is ``day`` is crawled."""
    following = day + timedelta(days=1)
    return datetime(following.year, following.month, following.day, tzinfo=BEIJING).astimezone(UTC)


def documents(mongo: MongoServer, database: str, collection: str = "stories") -> dict[int, dict[str, Any]]:
    with MongoClient(mongo.uri, serverSelectionTimeoutMS=5000, tz_aware=True) as client:
        return {doc["sid"]: doc for doc in client[database][collection].find({})}


def item(model: Replica, sid: int, published: datetime) -> dict[str, Any]:
    truth = model.truth(sid, BASE_URL)
    return {**truth, "published_at": published.astimezone(BEIJING).isoformat(), "fetched_at": "x"}


def test_every_fetch_moves_the_schedule_and_404s_become_gaps_tried_three_times(
    mongo: MongoServer, mongo_db_name: str, replica_model: Replica
) -> None:
    clock = Clock(datetime(2026, 10, 11, tzinfo=UTC))
    store = MongoStore(mongo.uri, mongo_db_name, "stories", policy=POLICY, clock=clock)
    try:
        store.ensure_indexes()
        young, old, gap = replica_model.sids()[-1], replica_model.sids()[0], 99_999
        two_days = item(replica_model, young, clock.moment - timedelta(days=2))
        result = store.write_batch(
            [
                story_write(two_days, clock.moment),
                story_write(item(replica_model, old, clock.moment - timedelta(days=3000)), clock.moment),
                Miss(gap, clock.moment),
            ]
        )
        assert result.refresh == {"scheduled/new": 2, "gaps/missed": 1}
        stored = documents(mongo, mongo_db_name)
        assert stored[young]["refresh_interval"] == 12 * HOUR  # a quarter of its age
        assert stored[young]["next_due"] == clock.moment + timedelta(hours=12)
        assert stored[old]["refresh_interval"] == POLICY.max_interval
        assert clock.moment < stored[old]["next_due"] <= clock.moment + timedelta(days=90)

        # unchanged: grows, but never past its age's bound; changed: shrinks
        clock.advance(12 * HOUR)
        assert store.write_batch([Touch(young, clock.moment)]).refresh == {"scheduled/unchanged": 1}
        assert documents(mongo, mongo_db_name)[young]["refresh_interval"] == 15 * HOUR  # 18 h, capped
        changed = {**two_days, "views": two_days["views"] + 1}
        assert store.write_batch([story_write(changed, clock.moment)]).refresh == {"scheduled/changed": 1}
        assert documents(mongo, mongo_db_name)[young]["refresh_interval"] == 7.5 * HOUR
        # the same content again through a story write (dedupe's Redis away): unchanged, not changed
        assert store.write_batch([story_write(changed, clock.moment)]).refresh == {"scheduled/unchanged": 1}

        # the gap: due a day later, then 2 and 4 days after its next misses, then left alone
        schedules = Schedules(store.collection, POLICY, clock)
        waits = []
        for _ in range(4):
            gaps = documents(mongo, mongo_db_name, "stories.gaps")
            if gaps[gap]["next_due"] is None:
                break
            waits.append((gaps[gap]["next_due"] - gaps[gap]["last_missed"]).total_seconds() / DAY)
            clock.moment = gaps[gap]["next_due"]
            assert schedules.due(100).gaps == [gap]
            store.write_batch([Miss(gap, clock.moment)])
        assert waits == [1, 2, 4]
        assert documents(mongo, mongo_db_name, "stories.gaps")[gap]["misses"] == 4
        clock.advance(365 * DAY)
        assert schedules.due(100_000).gaps == []
        # a gap that turns out to be a story is one no longer
        late = store.write_batch(
            [story_write({**item(replica_model, old, clock.moment), "sid": gap}, clock.moment)]
        )
        assert late.refresh == {"scheduled/new": 1, "gaps/filled": 1}
        assert documents(mongo, mongo_db_name, "stories.gaps") == {}
    finally:
        store.close()


def test_stories_stored_without_a_schedule_get_one_and_a_pick_is_claimed(
    mongo: MongoServer, mongo_db_name: str, replica_model: Replica
) -> None:
    clock = Clock(datetime(2026, 10, 11, tzinfo=UTC))
    store = MongoStore(mongo.uri, mongo_db_name, "stories")  # no policy: as before the refresh existed
    sids = replica_model.sids()[-40:]
    try:
        store.write_batch(
            [
                story_write(item(replica_model, sid, clock.moment - timedelta(days=sid % 7)), clock.moment)
                for sid in sids
            ]
        )
    finally:
        store.close()
    with MongoClient(mongo.uri, tz_aware=True) as client:
        stories = client[mongo_db_name]["stories"]
        stories.insert_one({"sid": "80001; DROP", "next_due": "soon"})  # hostile: ignored, never crashes
        schedules = Schedules(stories, POLICY, clock)
        assert schedules.backfill() == len(sids)
        assert schedules.due(1000).sids == []  # nothing due at once for lacking a schedule
        clock.advance(DAY)
        due = schedules.due(1000)
        # a quarter of its age (sid % 7 days): 1 h, then 6, 12, 18, 24 h are due after a day; 30, 36 h not
        expected = sorted(sid for sid in sids if sid % 7 <= 4)
        assert sorted(due.stories) == expected and not due.more
        capped = schedules.due(3)
        assert len(capped.stories) == 3 and capped.more
        schedules.claim(due)
        assert schedules.due(1000).sids == []  # a run before their fetch picks them no more
        clock.advance(POLICY.claim)
        assert set(expected) <= set(schedules.due(1000).stories)  # lost requests come back


def mongo_settings(mongo: MongoServer, database: str, now: datetime) -> dict[str, str]:
    return {
        "MONGO_URI": mongo.uri,
        "MONGO_DATABASE": database,
        "MONGO_FLUSH_INTERVAL": "0.5",
        "SOLIDOT_REFRESH_NOW": now.isoformat(),
    }


def test_a_refresh_a_day_after_a_full_crawl_fetches_what_is_due_and_finds_what_changed(
    mongo: MongoServer, mongo_db_name: str, replica_model: Replica, tmp_path: Path
) -> None:
    crawled_at = day_after(replica_model.today())
    sids = replica_model.sids()
    gaps = replica_model.gap_sids()
    with replica_server(STORIES, LAST_SID) as server:
        first = run_crawl(
            server,
            tmp_path / "full",
            {"sids": f"{replica_model.first_sid}-{replica_model.config.last_sid}"},
            mongo_settings(mongo, mongo_db_name, crawled_at),
        )
        assert first.returncode == 0, first.log[-3000:]
        port = server.port
    full_crawl = first.stats["downloader/request_count"] - 1  # robots.txt aside
    assert full_crawl == STORIES
    stored = documents(mongo, mongo_db_name)
    assert sorted(stored) == sids
    assert sorted(documents(mongo, mongo_db_name, "stories.gaps")) == gaps
    refreshed_at = crawled_at + timedelta(days=1)
    due = sorted(sid for sid, doc in stored.items() if doc["next_due"] <= refreshed_at)

    revised = Replica(ReplicaConfig(stories=STORIES, last_sid=LAST_SID, revision=1))
    changed = set(revised.changed_sids())
    with replica_server(STORIES, LAST_SID, extra=["--revision", "1", "--port", str(port)]) as server:
        refresh = run_crawl(
            server,
            tmp_path / "refresh",
            {"refresh": "true"},
            mongo_settings(mongo, mongo_db_name, refreshed_at),
        )
    assert refresh.returncode == 0, refresh.log[-3000:]
    assert refresh.stats.get("log_count/ERROR", 0) == 0, refresh.log[-3000:]
    fetched = refresh.stats["downloader/request_count"] - 1
    print(  # the numbers the issue asks the test to state
        f"\nfull crawl {full_crawl} fetches; refresh a day later {fetched} fetches "
        f"({len(due)} stories due, {len(gaps)} gaps), ratio {fetched / full_crawl:.2f}; "
        f"{len(changed)} stories changed, {len(changed & set(due))} of them due and found"
    )
    assert refresh.stats["solidot/refresh/picked_stories"] == len(due)
    assert refresh.stats["solidot/refresh/picked_gaps"] == len(gaps)
    assert fetched == len(due) + len(gaps) and fetched <= 0.25 * full_crawl
    # every changed story the policy says is due was found changed and stored as it is now
    assert changed & set(due), "the replica changes mostly recent stories, and those are due"
    assert refresh.stats["solidot/dedupe/changed"] == len(changed & set(due))
    after = documents(mongo, mongo_db_name)
    for sid in sids:
        model = revised if sid in changed and sid in due else replica_model
        problems = mismatches(stored_item(after[sid]), model.truth(sid, server.base_url), categories="subset")
        assert not problems, (sid, problems)
        if sid in due:
            assert after[sid]["next_due"] > refreshed_at
    # changed ones are due sooner than unchanged ones of their age would be
    for sid in changed & set(due):
        assert (
            after[sid]["refresh_interval"] < stored[sid]["refresh_interval"]
            or after[sid]["refresh_interval"] == HOUR
        )
    assert {
        sid: doc["misses"] for sid, doc in documents(mongo, mongo_db_name, "stories.gaps").items()
    } == dict.fromkeys(gaps, 2)
    # nothing is due again right after
    with MongoClient(mongo.uri, tz_aware=True) as client:
        again = Schedules(client[mongo_db_name]["stories"], POLICY, lambda: refreshed_at).due(1000)
    assert again.sids == []


def test_seed_refresh_queues_the_due_stories_for_the_workers_and_claims_them(
    mongo: MongoServer, mongo_db_name: str, redis_url: str, replica_model: Replica
) -> None:
    clock = Clock(day_after(replica_model.today()))
    store = MongoStore(mongo.uri, mongo_db_name, "stories", policy=POLICY, clock=clock)
    sids = replica_model.sids()[-60:]
    try:
        published = {
            sid: datetime.fromisoformat(replica_model.truth(sid, BASE_URL)["published_at"]) for sid in sids
        }
        store.write_batch(
            [story_write(item(replica_model, sid, published[sid]), clock.moment) for sid in sids]
        )
    finally:
        store.close()
    clock.advance(DAY)
    # due: the stories whose interval at their fetch a day ago, a quarter of their age then (1 h at
    # least), was a day or less: those then at most 4 days old
    due = sorted(
        sid for sid in sids if clock.moment - timedelta(days=1) - published[sid] <= timedelta(days=4)
    )
    assert 0 < len(due) < len(sids)

    def seed() -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "solidot_spider.cli", "seed", "--refresh", "--redis-url", redis_url]
        for name, value in mongo_settings(mongo, mongo_db_name, clock.moment).items():
            command += ["-s", f"{name}={value}"]
        return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)

    seeded = seed()
    assert seeded.returncode == 0, seeded.stderr
    assert f"{len(due)} requests pushed ({len(due)} stories and 0 gaps due for a refresh)" in seeded.stdout
    assert f"the queue holds {len(due)} requests" in seeded.stdout
    claimed = documents(mongo, mongo_db_name)
    until = clock.moment + timedelta(seconds=POLICY.claim)
    assert sorted(sid for sid, doc in claimed.items() if doc["next_due"] == until) == due
    # claimed: a second run before the workers fetched them seeds none of them again
    assert "0 requests pushed (0 stories and 0 gaps due" in seed().stdout
    # no MongoDB configured: refused with a clear message
    refused = subprocess.run(
        [sys.executable, "-m", "solidot_spider.cli", "seed", "--refresh", "--redis-url", redis_url],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert refused.returncode == 2 and "a refresh needs MONGO_URI" in refused.stderr


def test_refresh_is_a_scope_of_its_own_and_needs_the_store(tmp_path: Path) -> None:
    alone = Discovery.from_arguments(refresh="true")
    assert alone.refresh and not alone.latest  # no latest stories unless asked for
    both = Discovery.from_arguments(refresh="yes", latest="1")
    assert both.refresh and both.latest
    assert not Discovery.from_arguments().refresh
    with pytest.raises(ValueError, match="refresh must be true/false"):
        Discovery.from_arguments(refresh="often")
    refused = subprocess.run(
        [sys.executable, "-m", "scrapy", "crawl", "solidot", "-a", "refresh=true", "-s", "MONGO_URI="],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert refused.returncode != 0
    assert "a refresh needs MONGO_URI" in refused.stderr
