"""The MongoDB store, end to end: real crawls (``scrapy runspider``) into a real MongoDB server.

The server is mongoeco over the wire protocol (tests/mongo_server.py), or the
mongod ``MONGO_URI`` names. Stories come from ``tests/store_spider.py``, fed on
its stdin, so each test decides exactly when items flow.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from harness import wait_for
from mongo_server import MongoServer, mongo_server
from pymongo import MongoClient
from scrapy.exceptions import NotConfigured
from scrapy.utils.test import get_crawler
from store_spider import make_story

from scrapy_sharedcrawl.redact import redact_uri
from solidot_spider.archive.documents import (
    HASH_HISTORY,
    bson_time,
    published_datetime,
    stored_item,
    story_write,
)
from solidot_spider.archive.mongo import MongoStore
from solidot_spider.crawl.pipelines.store import MongoStorePipeline
from solidot_spider.site.content import content_hash

# the mongo and mongo_db_name fixtures (kept here too, so the module runs with --noconftest)

SPIDER = Path(__file__).resolve().parents[1] / "store_spider.py"


class StoreCrawl:
    """A ``scrapy runspider tests/store_spider.py`` process writing to MongoDB."""

    def __init__(
        self, workdir: Path, uri: str, database: str, settings: dict[str, str] | None = None
    ) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.log_file = workdir / "crawl.log"
        self.stats_file = workdir / "stats.json"
        all_settings = {
            "MONGO_URI": uri,
            "MONGO_DATABASE": database,
            "MONGO_SERVER_SELECTION_TIMEOUT": "2000",
            "LOG_FILE": str(self.log_file),
            "LOG_LEVEL": "DEBUG",
            "SOLIDOT_STATS_FILE": str(self.stats_file),
            **(settings or {}),
        }
        command = [sys.executable, "-m", "scrapy", "runspider", str(SPIDER)]
        for name, value in all_settings.items():
            command += ["-s", f"{name}={value}"]
        # outside the project directory: only the store, not the project's other pipelines
        env = {**os.environ, "PYTHONWARNINGS": "error::DeprecationWarning:solidot_spider"}
        self.process = subprocess.Popen(
            command,
            cwd=workdir,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )

    def __enter__(self) -> StoreCrawl:
        return self

    def __exit__(self, *exc_info: object) -> None:
        """A crawl a failed test left running would wait for MongoDB forever: kill it."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.communicate()

    def feed(self, lines: Iterable[dict[str, Any]]) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write("".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines))
        self.process.stdin.flush()

    def feed_in_background(self, lines: list[dict[str, Any]]) -> threading.Thread:
        """Feed without blocking the test: a crawl held back by a full buffer stops reading stdin."""
        thread = threading.Thread(target=self.feed, args=(lines,), daemon=True)
        thread.start()
        return thread

    def finish(self, timeout: float = 120) -> None:
        """Close stdin (the spider's last story) and wait for the crawl to close."""
        _, stderr = self.process.communicate(timeout=timeout)  # closes stdin
        assert self.process.returncode == 0, f"crawl failed:\n{stderr[-3000:]}\n{self.log[-3000:]}"

    @property
    def log(self) -> str:
        return self.log_file.read_text(encoding="utf-8") if self.log_file.exists() else ""

    @property
    def stats(self) -> dict[str, Any]:
        return json.loads(self.stats_file.read_text())

    def mongo_stat(self, name: str) -> int:
        return int(self.stats.get(f"solidot/mongo/{name}", 0))


def crawl(
    workdir: Path,
    uri: str,
    database: str,
    lines: list[dict[str, Any]],
    settings: dict[str, str] | None = None,
) -> StoreCrawl:
    """A whole crawl of ``lines``."""
    with StoreCrawl(workdir, uri, database, settings) as store_crawl:
        store_crawl.feed(lines)
        store_crawl.finish()
    return store_crawl


def documents(uri: str, database: str) -> dict[int, dict[str, Any]]:
    with MongoClient(uri, tz_aware=True, serverSelectionTimeoutMS=5000) as client:
        return {doc["sid"]: doc for doc in client[database]["stories"].find()}


def count_documents(uri: str, database: str) -> int:
    with MongoClient(uri, serverSelectionTimeoutMS=5000) as client:
        return client[database]["stories"].count_documents({})


# -- a crawl into MongoDB --------------------------------------------------------------


def test_every_story_becomes_exactly_one_document_in_few_batches(
    mongo: MongoServer, mongo_db_name: str, tmp_path: Path
) -> None:
    stories = [make_story(sid) for sid in range(1, 1201)]
    result = crawl(tmp_path, mongo.uri, mongo_db_name, stories)

    stored = documents(mongo.uri, mongo_db_name)
    assert sorted(stored) == list(range(1, 1201))
    for story in stories[:50]:
        doc = stored[story["sid"]]
        assert stored_item(doc) == story  # the item, field for field
        assert doc["content_hash"] == content_hash(story)
        assert doc["content_hashes"] == [doc["content_hash"]]
        assert doc["published"] == published_datetime(story["published_at"])
        assert doc["published"].utcoffset().total_seconds() == 0
        assert doc["fetch_count"] == 1
        assert doc["first_seen"] == doc["last_seen"]
    with MongoClient(mongo.uri) as client:
        indexes = client[mongo_db_name]["stories"].index_information()
    assert any(index["key"] == [("sid", 1)] and index.get("unique") for index in indexes.values())

    assert result.mongo_stat("upserted") == 1200
    assert result.mongo_stat("modified") == result.mongo_stat("unchanged") == 0
    assert 3 <= result.mongo_stat("batches") <= 12  # batches of 500, not one write per item
    assert result.mongo_stat("retries") == 0
    assert result.stats["item_scraped_count"] == 1200


def test_works_without_the_twisted_reactor(mongo: MongoServer, mongo_db_name: str, tmp_path: Path) -> None:
    stories = [make_story(sid) for sid in range(1, 51)]
    result = crawl(tmp_path, mongo.uri, mongo_db_name, stories, {"TWISTED_REACTOR_ENABLED": "False"})

    assert sorted(documents(mongo.uri, mongo_db_name)) == list(range(1, 51))
    assert result.mongo_stat("upserted") == 50


def test_the_same_stories_again_change_only_last_seen_fetch_count_and_the_schedule(
    mongo: MongoServer, mongo_db_name: str, tmp_path: Path
) -> None:
    stories = [make_story(sid) for sid in range(1, 301)]
    crawl(tmp_path / "first", mongo.uri, mongo_db_name, stories)
    before = documents(mongo.uri, mongo_db_name)

    again = crawl(tmp_path / "again", mongo.uri, mongo_db_name, stories)

    after = documents(mongo.uri, mongo_db_name)
    assert again.mongo_stat("upserted") == again.mongo_stat("modified") == 0
    assert again.mongo_stat("unchanged") == 300
    for sid, doc in after.items():
        old = before[sid]
        assert doc["fetch_count"] == 2
        assert doc["last_seen"] > old["last_seen"]
        # unchanged: due later, at a longer (or the longest) interval
        assert doc["next_due"] > old["next_due"] and doc["refresh_interval"] >= old["refresh_interval"]
        moved = {"last_seen", "next_due", "refresh_interval"}
        assert {**doc, "fetch_count": 1, **{name: old[name] for name in moved}} == old


def test_changed_stories_are_modified_and_keep_their_old_hash(
    mongo: MongoServer, mongo_db_name: str, tmp_path: Path
) -> None:
    stories = [make_story(sid) for sid in range(1, 201)]
    crawl(tmp_path / "first", mongo.uri, mongo_db_name, stories)
    before = documents(mongo.uri, mongo_db_name)
    changed = {7, 42, 43, 199}
    # more views on a few; on two others only a new category: not content, so unchanged
    second = []
    for story in stories:
        sid = story["sid"]
        if sid in changed:
            second.append(make_story(sid, views=story["views"] + 5, fetched_at="2026-11-26T00:00:00+00:00"))
        elif sid in {1, 2}:
            second.append(make_story(sid, categories=["linux"]))
        else:
            second.append(story)

    again = crawl(tmp_path / "again", mongo.uri, mongo_db_name, second)

    after = documents(mongo.uri, mongo_db_name)
    assert again.mongo_stat("modified") == len(changed)
    assert again.mongo_stat("unchanged") == 200 - len(changed)
    for sid in changed:
        old_hash = before[sid]["content_hash"]
        assert after[sid]["content_hash"] == content_hash(second[sid - 1]) != old_hash
        assert after[sid]["content_hashes"] == [old_hash, after[sid]["content_hash"]]
        assert after[sid]["views"] == before[sid]["views"] + 5
        assert stored_item(after[sid]) == second[sid - 1]
        assert after[sid]["first_seen"] == before[sid]["first_seen"]
    for sid in set(after) - changed:
        assert after[sid]["content_hashes"] == before[sid]["content_hashes"]
    assert after[1]["categories"] == after[2]["categories"] == ["science", "linux"]  # the union
    assert after[3]["categories"] == ["science"]


def test_hash_history_is_bounded(mongo: MongoServer, mongo_db_name: str, tmp_path: Path) -> None:
    versions = [make_story(1, views=views) for views in range(HASH_HISTORY + 5)]
    result = crawl(tmp_path, mongo.uri, mongo_db_name, versions, {"MONGO_BATCH_SIZE": "7"})

    doc = documents(mongo.uri, mongo_db_name)[1]
    assert doc["content_hashes"] == [content_hash(version) for version in versions][-HASH_HISTORY:]
    assert doc["views"] == HASH_HISTORY + 4
    assert doc["fetch_count"] == HASH_HISTORY + 5
    assert result.mongo_stat("upserted") == 1
    assert result.mongo_stat("modified") == HASH_HISTORY + 4


def test_touch_moves_only_last_seen_fetch_count_and_the_schedule(
    mongo: MongoServer, mongo_db_name: str, tmp_path: Path
) -> None:
    crawl(tmp_path / "first", mongo.uri, mongo_db_name, [make_story(sid) for sid in range(1, 11)])
    before = documents(mongo.uri, mongo_db_name)

    touched = crawl(
        tmp_path / "touch", mongo.uri, mongo_db_name, [{"touch": 3}, {"touch": 4}, {"touch": 999}]
    )

    after = documents(mongo.uri, mongo_db_name)
    assert touched.mongo_stat("touched") == 2  # sid 999 was never stored: left alone
    assert 999 not in after
    for sid in (3, 4):
        assert after[sid]["fetch_count"] == 2
        assert after[sid]["last_seen"] > before[sid]["last_seen"]
        assert after[sid]["next_due"] > before[sid]["next_due"]  # unchanged: due later
        moved = {"last_seen", "next_due", "refresh_interval"}
        assert {**after[sid], "fetch_count": 1, **{name: before[sid][name] for name in moved}} == before[sid]
    assert after[5] == before[5]


def test_a_story_mongodb_refuses_is_logged_with_its_sid_and_not_retried(
    mongo: MongoServer, mongo_db_name: str, tmp_path: Path
) -> None:
    with MongoClient(mongo.uri) as client:
        client[mongo_db_name]["stories"].create_index("url", unique=True)
    stories = [make_story(sid) for sid in range(1, 21)]
    stories[9]["url"] = stories[8]["url"]  # sid 10 collides with sid 9 on the unique url

    result = crawl(tmp_path, mongo.uri, mongo_db_name, stories)

    assert sorted(documents(mongo.uri, mongo_db_name)) == [sid for sid in range(1, 21) if sid != 10]
    assert result.mongo_stat("rejected") == 1
    assert result.mongo_stat("errors/WriteError") == 1
    assert result.mongo_stat("retries") == 0
    assert result.mongo_stat("upserted") == 19
    assert "MongoDB rejected story sid=10 (WriteError 11000)" in result.log


def test_a_story_bson_cannot_encode_is_rejected_alone(mongo: MongoServer, mongo_db_name: str) -> None:
    now = datetime.now(UTC)
    writes = [story_write(make_story(sid), now) for sid in range(1, 6)]
    writes[2] = story_write(make_story(3, references={"a set is not BSON"}), now)
    store = MongoStore(mongo.uri, mongo_db_name, "stories")
    try:
        result = store.write_batch(writes)
    finally:
        store.close()

    assert [(rejected.sid, rejected.error) for rejected in result.rejected] == [(3, "InvalidDocument")]
    assert result.upserted == 4
    assert sorted(documents(mongo.uri, mongo_db_name)) == [1, 2, 4, 5]


# -- MongoDB going away ------------------------------------------------------------------


def test_mongodb_restarted_mid_crawl_loses_nothing(tmp_path: Path) -> None:
    password = "s3cret-Pa55"
    with mongo_server(engine="sqlite", user=f"crawler:{password}") as server:
        if not server.restartable:
            pytest.skip("needs a MongoDB server the test can stop and restart")
        database = "solidot_restart"
        stories = [make_story(sid) for sid in range(1, 401)]
        settings = {
            "MONGO_BATCH_SIZE": "50",
            "MONGO_FLUSH_INTERVAL": "0.2",
            "MONGO_MAX_BUFFER": "150",
            "MONGO_RETRY_BASE": "0.2",
            "MONGO_RETRY_MAX": "1",
            "MONGO_SERVER_SELECTION_TIMEOUT": "500",
        }
        with StoreCrawl(tmp_path, server.uri, database, settings) as store_crawl:
            store_crawl.feed(stories[:100])
            wait_for(lambda: count_documents(server.uri, database) == 100, timeout=60, what="100 stored")

            server.stop()
            feeder = store_crawl.feed_in_background(stories[100:])
            redacted = f"mongodb://***@127.0.0.1:{server.port}"
            wait_for(lambda: f"MongoDB unreachable at {redacted}" in store_crawl.log, 30, what="outage")
            wait_for(lambda: "MongoDB buffer full: 150 items" in store_crawl.log, 30, what="backpressure")
            server.start()
            feeder.join(timeout=60)
            assert not feeder.is_alive()
            store_crawl.finish()

        stored = documents(server.uri, database)
    assert sorted(stored) == list(range(1, 401))
    assert all(stored_item(stored[story["sid"]]) == story for story in stories)
    # a batch written just before the stop but not acknowledged is found written on its retry
    assert store_crawl.mongo_stat("upserted") + store_crawl.mongo_stat("unchanged") == 400
    assert store_crawl.mongo_stat("modified") == 0
    assert store_crawl.mongo_stat("retries") >= 1
    assert store_crawl.mongo_stat("buffer_max") == 150
    assert "MongoDB reachable again at " + redacted in store_crawl.log
    for text in (store_crawl.log, store_crawl.stats_file.read_text()):
        assert password not in text
        assert "crawler:" not in text


def test_no_mongo_uri_means_no_store() -> None:
    with pytest.raises(NotConfigured):
        MongoStorePipeline.from_crawler(get_crawler(settings_dict={"MONGO_URI": ""}))


@pytest.mark.parametrize(
    ("uri", "shown"),
    [
        ("mongodb://crawler:p%40ss@db:27017/solidot", "mongodb://***@db:27017/solidot"),
        ("mongodb://crawler@db1,db2:27018/?replicaSet=rs0", "mongodb://***@db1,db2:27018/?replicaSet=rs0"),
        ("mongodb+srv://u:p@cluster.example.net/x?w=1", "mongodb+srv://***@cluster.example.net/x?w=1"),
        (
            "mongodb://db/?tlsCertificateKeyFilePassword=pw&w=1",
            "mongodb://db/?tlsCertificateKeyFilePassword=***&w=1",
        ),
        ("mongodb://127.0.0.1:27017", "mongodb://127.0.0.1:27017"),
    ],
)
def test_redact_uri_hides_credentials(uri: str, shown: str) -> None:
    assert redact_uri(uri) == shown
    assert redact_uri(f"cannot reach {uri}: refused") == f"cannot reach {shown}: refused"


def test_seen_times_are_utc_milliseconds() -> None:
    moment = bson_time(datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC))
    assert moment == datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
