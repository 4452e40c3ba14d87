"""A lighter ``--latest``: the list pages and the feed, and of the stories they list only those not
stored yet or due by the refresh policy; ``latest=all`` keeps fetching every one. Real crawls of the
replica into a MongoDB wire server, the policy's clock fixed by ``SOLIDOT_REFRESH_NOW``."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from harness import ROOT, ReplicaServer, run_crawl
from mongo_server import MongoServer
from pymongo import MongoClient

from solidot_replica import Replica, ReplicaConfig
from solidot_replica.simulation import LATEST_LIST_REQUESTS, World, run_latest
from solidot_spider.archive.policy import RefreshPolicy
from solidot_spider.site.discovery import Discovery
from solidot_spider.site.text import BEIJING
from solidot_spider.site.urls import SiteMap
from solidot_spider.spiders.solidot import SolidotSpider


def day_after(day: date) -> datetime:
    following = day + timedelta(days=1)
    return datetime(following.year, following.month, following.day, tzinfo=BEIJING).astimezone(UTC)


def listed(model: Replica) -> set[int]:
    found = set(model.home_sids()) | set(model.rss_sids())
    for category in model.categories():
        found |= set(model.category_home_sids(category))
    return found


def settings(mongo: MongoServer, database: str, now: datetime) -> dict[str, str]:
    return {
        "MONGO_URI": mongo.uri,
        "MONGO_DATABASE": database,
        "MONGO_FLUSH_INTERVAL": "0.5",
        "SOLIDOT_REFRESH_NOW": now.isoformat(),
    }


def next_due(mongo: MongoServer, database: str) -> dict[int, datetime]:
    with MongoClient(mongo.uri, serverSelectionTimeoutMS=5000, tz_aware=True) as client:
        return {doc["sid"]: doc["next_due"] for doc in client[database]["stories"].find({})}


def crawl(replica: ReplicaServer, workdir: Path, latest: str, environment: dict[str, str]) -> Any:
    result = run_crawl(replica, workdir, {"latest": latest}, environment)
    assert result.returncode == 0, result.log[-3000:]
    assert result.stats.get("log_count/ERROR", 0) == 0, result.log[-3000:]
    return result


def test_latest_fetches_the_listed_stories_that_are_new_or_due_and_latest_all_every_one(
    replica: ReplicaServer, replica_model: Replica, mongo: MongoServer, mongo_db_name: str, tmp_path: Path
) -> None:
    everything = listed(replica_model)
    crawled_at = day_after(replica_model.today())
    # the first run: nothing is stored, every listed story is new
    first = crawl(replica, tmp_path / "1", "true", settings(mongo, mongo_db_name, crawled_at))
    assert first.stats["solidot/stories"] == len(everything)
    assert set(next_due(mongo, mongo_db_name)) == everything
    lists = first.stats["downloader/request_count"] - len(everything)  # list pages, feed, robots.txt

    # ten minutes later: every listed story is stored and none is due (the shortest interval is 1 h)
    second = crawl(
        replica, tmp_path / "2", "true", settings(mongo, mongo_db_name, crawled_at + timedelta(minutes=10))
    )
    assert second.stats.get("solidot/stories", 0) == 0 and second.items == []
    assert second.stats["downloader/request_count"] == lists
    assert second.stats["solidot/latest/not_due"] >= len(everything)  # a story on two pages counts twice

    # two hours later: the young stories whose interval has run out are due, and only they are fetched
    later = crawled_at + timedelta(hours=2)
    due = {sid for sid, when in next_due(mongo, mongo_db_name).items() if when <= later}
    assert due and len(due) < len(everything) / 2
    third = crawl(replica, tmp_path / "3", "true", settings(mongo, mongo_db_name, later))
    assert third.stats.get("solidot/stories", 0) == len(due)
    assert third.stats["downloader/request_count"] == lists + len(due)
    assert all(when > later for sid, when in next_due(mongo, mongo_db_name).items() if sid in due)

    # latest=all: every listed story again, as before
    fourth = crawl(replica, tmp_path / "4", "all", settings(mongo, mongo_db_name, later))
    assert fourth.stats["solidot/stories"] == len(everything)


def test_without_a_store_every_listed_story_is_fetched(
    replica: ReplicaServer, replica_model: Replica, tmp_path: Path
) -> None:
    result = crawl(replica, tmp_path, "true", {"MONGO_URI": ""})
    assert result.stats["solidot/stories"] == len(listed(replica_model))


def test_latest_all_is_the_argument_for_every_listed_story() -> None:
    assert Discovery.from_arguments(latest="all") == Discovery(latest=True, latest_all=True)
    assert Discovery.from_arguments(latest=" ALL ").latest_all
    assert not Discovery.from_arguments(latest="true").latest_all
    assert not Discovery.from_arguments().latest_all
    # what travels with the list requests (through the shared queue too): due_only unless latest=all
    for latest, due_only in (("true", {"due_only": True}), ("all", {})):
        spider = SolidotSpider(latest=latest)
        spider.site = SiteMap.from_base_url("http://www.solidot.test:8080")
        assert {tuple(r.cb_kwargs.items()) for r in spider.start_requests_for(spider.discovery)} == {
            tuple(due_only.items())
        }


def test_seed_all_goes_with_latest() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "solidot_spider.cli", "seed", "--all", "--redis-url", "redis://127.0.0.1:1/0"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert (
        result.stderr.strip()
        == "solidot-crawl seed: --all goes with --latest (every story the list pages and the feed name)"
    )


def test_simulated_a_lighter_latest_costs_a_tenth_and_keeps_the_policy_s_promise() -> None:
    """What bench/refresh_policy.py reports, on a smaller replica: ``seed --latest --refresh`` every
    15 min, every listed story fetched each run against only the new or due ones."""
    replica = Replica(ReplicaConfig(stories=3000, last_sid=85572))
    world = World.of(replica, 10)
    policy = RefreshPolicy()
    every = run_latest(world, replica, policy, 900, every_listed=True)
    light = run_latest(world, replica, policy, 900, every_listed=False)
    assert every.lists_per_day == light.lists_per_day  # 15 a run, 96 runs a day (95 on the first)
    assert set(light.lists_per_day[1:]) == {96 * LATEST_LIST_REQUESTS} and LATEST_LIST_REQUESTS == 15
    assert sum(light.requests_per_day()) * 5 < sum(every.requests_per_day())
    # every new story is fetched at the first run after it appears, by --latest
    assert sum(light.latest_stories_per_day) >= len(world.new)
    # and no change goes unseen longer than the policy promises for the story's age
    assert light.stale and all(c.staleness <= policy.staleness_bound(c.age, 900) + 1e-6 for c in light.stale)
