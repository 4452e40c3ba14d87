"""Solidot's archive panel and ``solidot_archive_*`` metrics come through the framework's hook
(``ArchiveReport.view``): the dashboard's real reader over a real Redis and the MongoDB wire server,
``/metrics`` as prometheus-client's parser reads it; and the sample Grafana board asks only for
metrics the dashboard serves."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import redis
from harness import metric_samples
from mongo_server import MongoServer
from prometheus_client.exposition import generate_latest
from pymongo import MongoClient

from scrapy_sharedcrawl.dashboard.metrics import registry
from scrapy_sharedcrawl.dashboard.state import DashboardReader
from solidot_spider.cli import project_settings
from solidot_spider.crawl.report import ArchiveReport

ROOT = Path(__file__).resolve().parents[2]
BOARD = ROOT / "deploy" / "grafana" / "sharedcrawl.json"
STATS = {
    "response_received_count": 12,
    "item_scraped_count": 4,
    "scheduler/acked": 12,
    "solidot/dedupe/new": 3,
    "solidot/dedupe/changed": 1,
    "solidot/dropped/no_title": 2,
    "solidot/validate/dropped/bad_time": 1,
}
STORIES = [
    {
        "sid": 1,
        "title": "one",
        "url": "https://www.solidot.org/story?sid=1",
        "published_at": "2026-12-01T08:00",
    },
    {"sid": 2, "title": "<b>two</b>", "url": "javascript:alert(1)"},
    {"sid": 3, "title": "three", "url": "https://www.solidot.org/story?sid=3"},
]


def reading(redis_url: str, mongo_uri: str, database: str) -> dict[str, Any]:
    """One refresh of Solidot's dashboard (``solidot-crawl dashboard``'s settings and reader)."""
    settings = project_settings()
    settings.set("REDIS_URL", redis_url, priority="cmdline")
    settings.set("MONGO_DATABASE", database, priority="cmdline")
    return DashboardReader(settings, "solidot", mongo_uri).read()


def served(snapshot: dict[str, Any]) -> dict[str, float]:
    """``/metrics`` of ``snapshot``, parsed: ``name{label=value}`` → value."""
    text = generate_latest(registry(lambda: (snapshot, 1.0, True), lambda: {"token": 0})).decode()
    return metric_samples(text)


def seed(redis_url: str, mongo: MongoServer, database: str) -> None:
    client = redis.Redis.from_url(redis_url)
    client.hset("{solidot}:stats", mapping=STATS)
    client.hset("{solidot}:meta", mapping={"started_at": "1700000000", "finished_at": "1700000100"})
    with MongoClient(mongo.uri) as store:
        store[database]["stories"].insert_many([dict(story) for story in STORIES])


def test_the_archive_panel_and_its_metrics_come_through_the_hook(
    redis_url: str, mongo: MongoServer, mongo_db_name: str
) -> None:
    seed(redis_url, mongo, mongo_db_name)
    snapshot = reading(redis_url, mongo.uri, mongo_db_name)
    project = snapshot["project"]
    assert project["error"] is None
    panel = project["panel"]
    assert panel["title"] == "archive" and panel["warning"] is None
    assert {f["key"]: f["value"] for f in panel["figures"]} == {
        "stories": 3,
        "new": 3,
        "changed": 1,
        "unchanged": 0,
    }
    assert panel["tables"] == [
        {"key": "drops", "title": "drops", "rows": {"page/no_title": 2, "validate/bad_time": 1}}
    ]
    # the latest stored first, as text; a link only when http(s)
    assert [(link["text"], link["url"]) for link in panel["links"]] == [
        ("three", "https://www.solidot.org/story?sid=3"),
        ("<b>two</b>", None),
        ("one", "https://www.solidot.org/story?sid=1"),
    ]
    assert panel["links"][2]["note"] == "sid 1 · 2026-12-01 08:00"
    assert snapshot["counts"]["items"] == 3 and "stored in MongoDB" in snapshot["counts"]["items_source"]
    prom = served(snapshot)
    assert prom["solidot_archive_stories"] == 3
    assert prom["solidot_archive_crawl_stories_total{outcome=new}"] == 3
    assert prom["solidot_archive_crawl_stories_total{outcome=changed}"] == 1
    assert prom["solidot_archive_dropped_total{reason=page/no_title}"] == 2
    assert prom["sharedcrawl_items"] == 3 and prom["sharedcrawl_pages_total"] == 12
    assert not [name for name in prom if name.startswith("solidot_crawl_")]  # the framework's are neutral


def test_without_a_store_the_metrics_stay_and_the_panel_shows_only_drops(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    client.hset("{solidot}:stats", mapping={"solidot/dedupe/new": 5, "response_received_count": 5})
    snapshot = reading(redis_url, "", "solidot")
    assert snapshot["project"]["panel"] is None  # no archive read, nothing dropped
    prom = served(snapshot)
    assert prom["solidot_archive_crawl_stories_total{outcome=new}"] == 5
    assert "solidot_archive_stories" not in prom  # unknown without MongoDB: not served as 0
    client.hset("{solidot}:stats", "solidot/dropped/no_title", 1)
    panel = reading(redis_url, "", "solidot")["project"]["panel"]
    assert panel["tables"][0]["rows"] == {"page/no_title": 1} and panel["links"] == []
    assert {f["key"]: f["value"] for f in panel["figures"]}["stories"] is None


def test_the_view_is_the_archive_report_s_own() -> None:
    settings = project_settings()
    report = ArchiveReport(settings)
    view = report.view(
        {"solidot/dedupe/unchanged": 7}, {"items": 0, "items_source": "scraped by the workers"}
    )
    assert view.panel is None and report.metric_prefix == "solidot_archive_"
    assert {metric.name for metric in view.metrics} == {
        "solidot_archive_crawl_stories",
        "solidot_archive_dropped",
    }


def test_the_grafana_board_asks_only_for_metrics_the_dashboard_serves(
    redis_url: str, mongo: MongoServer, mongo_db_name: str
) -> None:
    seed(redis_url, mongo, mongo_db_name)
    finished = reading(redis_url, mongo.uri, mongo_db_name)
    # the time left is served only while work is left at a measured pace: as a crawling reading has it
    crawling = {**finished, "progress": {**finished["progress"], "eta_seconds": 60}}
    names = {re.sub(r"\{.*", "", sample) for snapshot in (finished, crawling) for sample in served(snapshot)}
    board = json.loads(BOARD.read_text(encoding="utf-8"))
    exprs = [target["expr"] for panel in board["panels"] for target in panel.get("targets", [])]
    asked = {name for expr in exprs for name in re.findall(r"\b((?:sharedcrawl|solidot)_[a-z_]+)", expr)}
    assert asked and asked <= names, sorted(asked - names)
    assert not [name for name in asked if name.startswith(("solidot_crawl_", "solidot_dashboard_"))]
