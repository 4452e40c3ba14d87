"""Replica crawls into a real MongoDB wire-protocol server: exactly the truth, idempotent reruns,
updates of what changed, an outage that loses nothing, and the export of the archive."""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from harness import (
    ROOT,
    CrawlResult,
    ReplicaServer,
    crawl_command,
    crawl_env,
    replica_server,
    run_crawl,
    wait_for,
)
from mongo_server import MongoServer, mongo_server
from pymongo import MongoClient
from truth import mismatches

from solidot_replica import Replica, ReplicaConfig
from solidot_spider.archive.documents import stored_item

STORIES, LAST_SID = 120, 80300
#: the saved real page (a copy of shared/fixtures/story-80222.md, so a clone is self-contained)
FIXTURE = ROOT / "tests" / "fixtures" / "story-80222.md"


def mongo_settings(server: MongoServer, database: str) -> dict[str, str]:
    return {"MONGO_URI": server.uri, "MONGO_DATABASE": database, "MONGO_FLUSH_INTERVAL": "0.5"}


def stored(server: MongoServer, database: str) -> list[dict[str, Any]]:
    with MongoClient(server.uri, serverSelectionTimeoutMS=5000, tz_aware=True) as client:
        return list(client[database]["stories"].find({}, sort=[("sid", 1)]))


def assert_store_matches(documents: list[dict[str, Any]], model: Replica, base_url: str) -> None:
    """One document per served story, each (bookkeeping aside) equal to the replica's truth."""
    sids = [doc["sid"] for doc in documents]
    assert sids == sorted(set(sids)), "a story is stored twice"
    assert sids == model.sids()
    for doc in documents:
        problems = mismatches(stored_item(doc), model.truth(doc["sid"], base_url), categories="exact")
        assert not problems, (doc["sid"], problems)


def crawl_days(server: ReplicaServer, model: Replica, workdir: Path, settings: dict[str, str]) -> CrawlResult:
    days = model.days()
    result = run_crawl(
        server, workdir, {"since": days[0].isoformat(), "until": days[-1].isoformat()}, settings
    )
    assert result.returncode == 0, result.log[-3000:]
    assert result.stats.get("log_count/ERROR", 0) == 0, result.log[-3000:]
    return result


@pytest.fixture(scope="module")
def model() -> Replica:
    return Replica(ReplicaConfig(stories=STORIES, last_sid=LAST_SID))


def test_crawls_store_the_truth_then_change_nothing_then_update_what_changed(
    mongo: MongoServer, mongo_db_name: str, model: Replica, tmp_path: Path
) -> None:
    settings = mongo_settings(mongo, mongo_db_name)
    with replica_server(STORIES, LAST_SID) as server:
        first = crawl_days(server, model, tmp_path / "first", settings)
        documents = stored(mongo, mongo_db_name)
        assert_store_matches(documents, model, server.base_url)
        assert first.stats["solidot/mongo/upserted"] == len(model.sids())
        assert all(doc["fetch_count"] == 1 for doc in documents)

        again = crawl_days(server, model, tmp_path / "again", settings)
        assert again.stats["solidot/dedupe/unchanged"] == len(model.sids())
        assert (
            again.stats.get("solidot/mongo/upserted", 0) == again.stats.get("solidot/mongo/modified", 0) == 0
        )
        rerun = stored(mongo, mongo_db_name)
        assert [stored_item(d) for d in rerun] == [stored_item(d) for d in documents]
        assert all(doc["fetch_count"] == 2 for doc in rerun)
        port = server.port

    revised = Replica(ReplicaConfig(stories=STORIES, last_sid=LAST_SID, revision=1))
    changed = set(revised.changed_sids())
    assert changed
    # the same site (same address) a while later
    with replica_server(STORIES, LAST_SID, extra=["--revision", "1", "--port", str(port)]) as server:
        update = crawl_days(server, revised, tmp_path / "update", settings)
        assert update.stats["solidot/dedupe/changed"] == len(changed)
        assert update.stats["solidot/mongo/modified"] == len(changed)
        assert update.stats["solidot/dedupe/unchanged"] == len(model.sids()) - len(changed)
        updated = stored(mongo, mongo_db_name)
        assert_store_matches(updated, revised, server.base_url)
    before = {doc["sid"]: doc for doc in documents}
    for doc in updated:
        if doc["sid"] in changed:
            assert doc["content_hashes"] == [before[doc["sid"]]["content_hash"], doc["content_hash"]]
        else:
            assert doc["content_hash"] == before[doc["sid"]]["content_hash"]


def test_mongodb_away_for_20_seconds_loses_nothing(model: Replica, tmp_path: Path) -> None:
    # SQLite engine: what was stored before the outage must survive the server's restart
    with (
        mongo_server(engine="sqlite") as mongo,
        replica_server(STORIES, LAST_SID, faults="slow=1,slow_delay=0.1") as server,
    ):
        output, log = tmp_path / "items.jsonl", tmp_path / "crawl.log"
        settings = {**mongo_settings(mongo, "outage"), "CONCURRENT_REQUESTS": "4", "LOG_FILE": str(log)}
        low, high = min(model.sids()), max(model.sids())
        command = crawl_command(output, {"sids": f"{low}-{high}"}, settings)
        crawl = subprocess.Popen(command, cwd=ROOT, env=crawl_env(server, tmp_path / "stats.json"))
        try:
            wait_for(lambda: len(stored(mongo, "outage")) >= 10, timeout=120, what="10 stories stored")
            mongo.stop()
            wait_for(lambda: "MongoDB unreachable" in log.read_text(), timeout=60, what="the outage noticed")
            # the crawl goes on fetching but can't close while stories wait for MongoDB
            with pytest.raises(subprocess.TimeoutExpired):
                crawl.wait(timeout=20)
            mongo.start()
            assert crawl.wait(timeout=180) == 0
        finally:
            if crawl.poll() is None:
                crawl.kill()
        text = log.read_text()
        assert "Credentials" not in text and "ERROR" not in text, text[-3000:]
        for doc in stored(mongo, "outage"):
            assert not mismatches(stored_item(doc), model.truth(doc["sid"], server.base_url), "subset")
        assert [doc["sid"] for doc in stored(mongo, "outage")] == model.sids()


def front_matter_and_lines(path: Path) -> tuple[dict[str, str], list[str]]:
    """A Markdown story's front matter fields (in order) and its non-blank text lines.

    The export quotes every value (a JSON string, which is YAML); the saved page does not.
    """
    front, _, text = path.read_text(encoding="utf-8").removeprefix("---\n").partition("\n---\n")
    pairs = (line.split(": ", 1) for line in front.splitlines())
    fields = {key: json.loads(value) if value.startswith('"') else value for key, value in pairs}
    return fields, [line for line in text.splitlines() if line.strip()]


def test_export_gives_the_fixture_shape_and_text_for_80222(
    mongo: MongoServer, mongo_db_name: str, replica: ReplicaServer, tmp_path: Path
) -> None:
    result = run_crawl(replica, tmp_path, {"sids": "80220-80224"}, mongo_settings(mongo, mongo_db_name))
    assert result.returncode == 0, result.log[-3000:]
    exports = {
        "mongo": ["--mongo-uri", mongo.uri, "--database", mongo_db_name],
        "file": ["--from", str(tmp_path / "items.jsonl")],
    }
    fixture, fixture_lines = front_matter_and_lines(FIXTURE)
    for name, source in exports.items():
        out = tmp_path / f"md-{name}"
        command = [sys.executable, "-m", "solidot_spider.cli", "export", "--format", "md", "--out", str(out)]
        exported = subprocess.run([*command, *source], cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert exported.returncode == 0, exported.stderr
        assert sorted(p.name for p in out.iterdir()) == [f"{sid}.md" for sid in range(80220, 80225)]
        front, lines = front_matter_and_lines(out / "80222.md")
        assert list(front) == list(fixture)  # title, url, source, date, fetch_date, in that order
        assert (front["title"], front["source"]) == (fixture["title"], fixture["source"])
        assert front["url"] == f"{replica.base_url}/story?sid=80222"
        # the story's Beijing day (docs/storing.md says why the fixture's date differs)
        assert front["date"] == "2025-01-03"
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?", front["fetch_date"])
        # the heading, the story's paragraph and its reference line, exactly as the saved page has them
        heading = fixture_lines.index(f"# {fixture['title']}")
        story = [
            fixture_lines[heading],
            *[line for line in fixture_lines if line.startswith("俄罗斯总统普京")],
        ]
        story.append(fixture_lines[fixture_lines.index(story[-1]) + 1])
        assert lines == story


def test_export_to_jsonl_and_csv_round_trips(replica: ReplicaServer, tmp_path: Path) -> None:
    result = run_crawl(replica, tmp_path, {"sids": "80290-80300"})
    assert result.returncode == 0
    for fmt in ("jsonl", "csv"):
        out = tmp_path / f"stories.{fmt}"
        command = [sys.executable, "-m", "solidot_spider.cli", "export", "--format", fmt, "--out", str(out)]
        exported = subprocess.run(
            [*command, "--from", str(tmp_path / "items.jsonl")], cwd=ROOT, capture_output=True, text=True
        )
        assert exported.returncode == 0, exported.stderr
        assert f"exported {len(result.items)} stories" in exported.stderr
    by_sid = result.by_sid()
    exported_jsonl = [json.loads(line) for line in (tmp_path / "stories.jsonl").read_text().splitlines()]
    assert {item["sid"]: item for item in exported_jsonl} == by_sid
    with (tmp_path / "stories.csv").open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(row["sid"]) for row in rows] == sorted(by_sid)
    for row in rows:
        item = by_sid[int(row["sid"])]
        assert json.loads(row["comments"]) == item["comments"] and row["body_text"] == item["body_text"]


def test_export_without_a_source_says_what_is_missing(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "solidot_spider.cli", "export", "--format", "md", "--out", str(tmp_path)]
    exported = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, env={"PATH": "/usr/bin"})
    assert exported.returncode == 2
    assert "set MONGO_URI" in exported.stderr
